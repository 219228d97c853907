document.getElementById("app")!.textContent = "Lifeline console";
