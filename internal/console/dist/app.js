"use strict";(()=>{document.getElementById("app").textContent="Lifeline console";})();
