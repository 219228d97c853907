package detect

import (
	"time"
)

// Signal names a kind of struggle the engine recognises. Rules refer to it
// by name in their "signal" field; custom signals start with "x-".
type Signal string

// Built-in signals. Their defaults are in Signals and DETECTION.md.
const (
	RepeatedError  Signal = "repeated_error"
	ErrorBurst     Signal = "error_burst"
	ErrorClick     Signal = "error_click"
	RequestFailed  Signal = "request_failed"
	FormInvalid    Signal = "form_invalid"
	RetrySubmit    Signal = "retry_submit"
	RageClick      Signal = "rage_click"
	DeadClick      Signal = "dead_click"
	AppCrash       Signal = "app_crash"
	UIUnresponsive Signal = "ui_unresponsive"
	PageLoop       Signal = "page_loop"
	QuickBack      Signal = "quick_back"
	IntentPage     Signal = "intent_page"
	Stalled        Signal = "stalled"
	Dwell          Signal = "dwell"
	IdleAfterError Signal = "idle_after_error"
	Track          Signal = "track"
	Report         Signal = "report"
)

// SignalDefaults are the defaults of a built-in signal, used for every rule
// field left at zero.
type SignalDefaults struct {
	// Signal is the signal's name.
	Signal Signal
	// Count is how many pieces of evidence with the same key must fall in
	// Window for the rule to fire.
	Count int
	// Window is the time in which Count pieces of evidence must fall.
	Window time.Duration
	// After bounds the delay from a triggering action (a click, an error)
	// to the evidence, for signals that correlate two events.
	After time.Duration
	// Min is a duration threshold (long task length, active dwell time).
	Min time.Duration
	// Weight is what a finding adds to the visit's score.
	Weight float64
	// Booster signals count toward the score only together with another
	// signal (DETECTION.md: dwell and intent pages).
	Booster bool
	// Say is the agent sentence template (see Rule.Say).
	Say string
	// Source cites the public definition the default comes from.
	Source string

	kinds uint16
}

func kinds(ks ...Kind) uint16 {
	var m uint16
	for _, k := range ks {
		m |= 1 << k
	}
	return m
}

const allKinds = 1<<numKinds - 2

// Signals lists the built-in signals with their defaults. Every default cites
// the public definition it follows (see DETECTION.md).
var Signals = []SignalDefaults{
	// Same fingerprint repeatedly: Clarity caps script errors at 5 per
	// message (ScriptErrorLimit=5); 3 in a minute is a loop, not noise.
	{Signal: RepeatedError, Count: 3, Window: time.Minute, Weight: 3, kinds: kinds(KindError),
		Say:    `Error "{message}" {times} on {page} in {span}`,
		Source: "Clarity ScriptErrorLimit=5; PostHog BucketedRateLimiter (10 per type, +1 per 10 s)"},
	// Any errors in a burst: PostHog's token bucket allows 10 per type then
	// +1 per 10 s; 5 in 10 s is well past a page's background noise.
	{Signal: ErrorBurst, Count: 5, Window: 10 * time.Second, Weight: 3, kinds: kinds(KindError),
		Say:    `{count} errors on {page} in {span}`,
		Source: "PostHog posthog-js BucketedRateLimiter"},
	// A JS error within 1000 ms after a click: Datadog trackClickActions.ts
	// (error_click frustration).
	{Signal: ErrorClick, Count: 1, Window: time.Minute, After: time.Second, Weight: 5, kinds: kinds(KindError, KindClick),
		Say:    `Clicking {selector} threw "{message}" on {page}`,
		Source: "Datadog browser-sdk trackClickActions.ts (error within 1000 ms of a click)"},
	// Status >= 400, network error or timeout on first-party origins,
	// escalating on repeat: OpenReplay networkIssue.go.
	{Signal: RequestFailed, Count: 2, Window: time.Minute, Weight: 5, kinds: kinds(KindRequest),
		Say:    `{request} failed with {status} {times} on {page} in {span}`,
		Source: "OpenReplay backend/pkg/handlers/web/networkIssue.go"},
	// >= 2 rejected submits of one form in 60 s, or one field invalid >= 3
	// times: Contentsquare friction score (validation errors); MDN "invalid".
	{Signal: FormInvalid, Count: 2, Window: time.Minute, Weight: 3, kinds: kinds(KindInvalid, KindSubmit),
		Say:    `Form {form} rejected {times} on {page} in {span}`,
		Source: "Contentsquare friction score (validation errors); MDN HTMLInputElement invalid event"},
	// The same request re-sent within 10 s after it failed: Quantum Metric
	// patent US 10,656,984 (re-request while unanswered).
	{Signal: RetrySubmit, Count: 2, Window: 10 * time.Second, Weight: 3, kinds: kinds(KindRequest),
		Say:    `Retried {request}{form} {times} in {span} after it failed on {page}`,
		Source: "Quantum Metric US 10,656,984"},
	// >= 3 clicks, each <= 1000 ms after the previous and <= 30 px away:
	// PostHog rageclick.ts (3/1000 ms/30 px); Datadog computeFrustration.ts.
	{Signal: RageClick, Count: 3, Window: time.Second, Weight: 4, kinds: kinds(KindClick),
		Say:    `Rage-clicked {selector} {count} times on {page}`,
		Source: "PostHog posthog-js rageclick.ts (3 clicks, 1000 ms, 30 px); Datadog computeFrustration.ts"},
	// No DOM change within 2500 ms after a click on an interactive target:
	// PostHog dead-clicks-autocapture.ts; Sentry handleClick.ts. Two on the
	// same element in 30 s, so one stray click is not enough.
	{Signal: DeadClick, Count: 2, Window: 30 * time.Second, Weight: 2, kinds: kinds(KindClick),
		Say:    `Clicked {selector} {times} on {page} and nothing happened`,
		Source: "PostHog dead-clicks-autocapture.ts (2500 ms); Sentry replay handleClick.ts"},
	// >= 70 % of nodes removed within 2 s of a JS error: OpenReplay
	// appCrash.go. The widget reports it as track "app_crash"; crash-class
	// error messages (chunk load failures) count too.
	{Signal: AppCrash, Count: 1, Window: time.Minute, Weight: 8, kinds: kinds(KindTrack, KindError),
		Say:    `The page crashed on {page}{quoted}`,
		Source: "OpenReplay backend appCrash.go"},
	// Long tasks > 2 s within 10 s after a click (INP poor is > 500 ms):
	// web.dev Web Vitals INP bands.
	{Signal: UIUnresponsive, Count: 1, Window: time.Minute, After: 10 * time.Second, Min: 2 * time.Second, Weight: 3, kinds: kinds(KindLongTask, KindClick),
		Say:    `The page froze for {duration} after a click on {page}`,
		Source: "web.dev INP thresholds (poor > 500 ms); long tasks API"},
	// Same path loaded >= 3 times in a row within 15 s: Conviva page loop.
	{Signal: PageLoop, Count: 3, Window: 15 * time.Second, Weight: 2, kinds: kinds(KindPage),
		Say:    `Loaded {page} {count} times in {span}`,
		Source: "Conviva page loop"},
	// Back to the previous path within 10 s: Clarity quick back.
	{Signal: QuickBack, Count: 1, Window: 10 * time.Second, Weight: 2, kinds: kinds(KindPage),
		Say:    `Went back to {page} after {span} on {other}`,
		Source: "Microsoft Clarity quick back"},
	// Pages such as /cancel or /help: support-seeking as a negative
	// experience signal; counts only with another signal unless alone.
	{Signal: IntentPage, Count: 1, Window: time.Minute, Weight: 3, Booster: true, kinds: kinds(KindPage),
		Say:    `Opened {page}`,
		Source: "DETECTION.md intent_page / help_seeking"},
	// >= 30 s of visible idle after interacting on a form step; never on
	// arrival: proactive-chat vendors' 20-30 s idle examples. The widget
	// sends idle after 30 s without input.
	{Signal: Stalled, Count: 1, Window: time.Minute, Weight: 1, kinds: kinds(KindIdle),
		Say:    `Stopped on {page} after starting to fill it in`,
		Source: "proactive chat idle triggers (20-30 s); DETECTION.md stalled"},
	// Time on page, active and visible only, without navigation or a
	// successful submit; a booster only: Chatwoot, Zendesk and Intercom
	// time-on-page triggers.
	{Signal: Dwell, Count: 1, Window: time.Minute, Min: 2 * time.Minute, Weight: 2, Booster: true, kinds: allKinds,
		Say:    `{onpage} on {page} without progress`,
		Source: "Chatwoot / Zendesk / Intercom time-on-page triggers"},
	// Idle within 60 s after an error or failed request on the page.
	{Signal: IdleAfterError, Count: 1, Window: time.Minute, After: time.Minute, Weight: 2, kinds: kinds(KindIdle),
		Say:    `Went idle after an error on {page}`,
		Source: "DETECTION.md stalled + error correlation"},
	// Named events the site sends with lifeline('track', name).
	{Signal: Track, Count: 1, Window: time.Minute, Weight: 3, kinds: kinds(KindTrack),
		Say:    `Site event "{name}" {times} on {page}`,
		Source: "site-defined"},
	// Errors the site reports with lifeline('error', msg).
	{Signal: Report, Count: 1, Window: 5 * time.Minute, Weight: 3, kinds: kinds(KindReport),
		Say:    `Site reported "{message}" {times} on {page} in {span}`,
		Source: "site-defined"},
}

func signalDefaults(s Signal) *SignalDefaults {
	for i := range Signals {
		if Signals[i].Signal == s {
			return &Signals[i]
		}
	}
	return nil
}

// View is what a custom signal sees of a visit. It is valid only during the
// call.
type View struct {
	// Visit is the visit key.
	Visit string
	// Page is the current page path.
	Page string
	// OnPage is the active, visible time on the current page.
	OnPage time.Duration
	// LastClick is the time of the last click on this page, zero if none;
	// LastSelector is its selector.
	LastClick    time.Time
	LastSelector string
	// LastError is the time of the last JS error, report or failed request
	// on this page, zero if none.
	LastError time.Time
	// Visible and Idle are the tab's state before this event.
	Visible, Idle bool
	// Interacted reports a click, submit or invalid event on this page.
	Interacted bool
}

// SignalFunc is a custom signal written in Go. The engine calls it for each
// event on pages its rule applies to. It returns ok when ev is evidence and
// a key that groups evidence (for example a hash of an endpoint; 0 groups
// everything); the engine counts evidence with the same key within the
// rule's Window and fires when Count is reached, exactly as for built-in
// signals. It must not keep r, v or ev, and must not allocate if the engine
// is to stay allocation-free.
type SignalFunc func(r *Rule, v *View, ev *Event) (key uint32, ok bool)

// Key hashes a string into a SignalFunc key without allocating.
func Key(s string) uint32 { return hash1(s) }
