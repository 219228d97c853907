package chat

import (
	"fmt"
	"testing"
	"time"
)

func TestOfferPolicyDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name      string
		policy    OfferPolicy
		state     OfferState
		available bool
		want      Decision
	}{
		{"first offer", OfferPolicy{}, OfferState{}, true, Decision{Offer: true, Mode: "chat"}},
		{"no agent: leave a message", OfferPolicy{}, OfferState{}, false, Decision{Offer: true, Mode: "message"}},
		{"one per page", OfferPolicy{}, OfferState{Offers: 1, PageOffers: 1}, true, Decision{Reason: "page cap"}},
		{"two per visit", OfferPolicy{}, OfferState{Offers: 2}, true, Decision{Reason: "visit cap"}},
		{"below a raised cap", OfferPolicy{MaxPerVisit: 3}, OfferState{Offers: 2}, true, Decision{Offer: true, Mode: "chat"}},
		{"declined: quiet for the visit", OfferPolicy{}, OfferState{DeclinedAt: now.Add(-time.Hour)}, true, Decision{Reason: "declined"}},
		{"declined: quiet period not over", OfferPolicy{DeclineQuiet: Duration(10 * time.Minute)}, OfferState{DeclinedAt: now.Add(-9 * time.Minute)}, true, Decision{Reason: "declined"}},
		{"declined: quiet period over", OfferPolicy{DeclineQuiet: Duration(10 * time.Minute)}, OfferState{DeclinedAt: now.Add(-10 * time.Minute)}, true, Decision{Offer: true, Mode: "chat"}},
		{"closed hours: leave a message", OfferPolicy{Hours: &BusinessHours{Days: map[string]string{"mon": "12:00-18:00"}}}, OfferState{}, true, Decision{Offer: true, Mode: "message"}},
		{"open hours", OfferPolicy{Hours: &BusinessHours{Days: map[string]string{"mon": "09:00-10:01"}}}, OfferState{}, true, Decision{Offer: true, Mode: "chat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := tt.state
			if got := tt.policy.Decide(&st, "visitor", now, tt.available); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOfferStatePages(t *testing.T) {
	t.Parallel()
	var st OfferState
	st.NewPage("/checkout")
	st.Shown()
	st.NewPage("/checkout") // same page view: the page cap still holds
	if d := (OfferPolicy{}).Decide(&st, "v", time.Now(), true); d.Offer {
		t.Fatal("offered twice on one page")
	}
	st.NewPage("/cart")
	if d := (OfferPolicy{}).Decide(&st, "v", time.Now(), true); !d.Offer {
		t.Fatalf("second page, second offer refused: %+v", d)
	}
}

func TestHoldoutShare(t *testing.T) {
	t.Parallel()
	in := 0
	for i := range 10000 {
		if inHoldout(fmt.Sprint("visitor-", i), 0.1) {
			in++
		}
	}
	if in < 900 || in > 1100 {
		t.Errorf("%d of 10000 visitors in a 10%% holdout", in)
	}
	if inHoldout("v", 0.1) != inHoldout("v", 0.1) {
		t.Error("holdout assignment is not stable")
	}
	d := (OfferPolicy{Holdout: 0.5}).Decide(&OfferState{}, holdoutVisitor(t), time.Now(), true)
	if d.Offer || !d.Holdout {
		t.Errorf("held-out visitor: Decide = %+v, want holdout without offer", d)
	}
}

func holdoutVisitor(t *testing.T) string {
	for i := range 100 {
		if id := fmt.Sprint("h", i); inHoldout(id, 0.5) {
			return id
		}
	}
	t.Fatal("no visitor in a 50% holdout among 100")
	return ""
}

func TestBusinessHoursValidate(t *testing.T) {
	t.Parallel()
	for _, b := range []BusinessHours{
		{TimeZone: "Mars/Olympus", Days: map[string]string{}},
		{Days: map[string]string{"monday": "09:00-17:00"}},
		{Days: map[string]string{"mon": "17:00-09:00"}},
		{Days: map[string]string{"mon": "9-5"}},
	} {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", b)
		}
	}
	ok := BusinessHours{TimeZone: "Europe/Paris", Days: map[string]string{"mon": "09:00-17:30", "sat": "10:00-12:00"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
}
