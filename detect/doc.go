// Package detect turns a visitor's browser events into struggle findings,
// a decaying struggle score and an offer decision, with one plain sentence
// that explains each finding to an agent.
//
// The package is pure: it does no I/O, starts no goroutines, reads no clock
// and does not log. Time arrives on each Event, so one input always gives one
// output, which is what makes recordings replayable (see detect/backtest).
//
// Rules are data (see Ruleset and ParseRuleset). Each rule names a built-in
// signal (see Signals), its thresholds, time window, page pattern, weight and
// offer text. Teams add their own signals in Go with a SignalFunc registered
// in Config.Signals and referenced from rules as "x-name".
package detect
