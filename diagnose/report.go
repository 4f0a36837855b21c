// Package diagnose finds out why a tokenmgr credential does not work, and
// says so as a list of structured checks: the configuration, the store,
// the clock, a real token request, the token's format, expiry and
// signature, and an API called with it. Each [Check] is OK, WARN, FAIL or
// SKIP with a message and, when something is wrong, a hint.
//
// "tokenmgr doctor" prints a [Report]; a service can run the same
// diagnosis at start-up and log it with log/slog, since [Check] and
// [Report] are [slog.LogValuer]s. No check's message or hint holds a token,
// a refresh token, a client secret or a passphrase.
//
// [Run] runs the checks. They use the tokenmgr package's own rules (host
// policy, URL rules, error classification and hints), so a diagnosis never
// passes what the client would refuse, or the reverse. [Explain] puts the
// same words on any error of tokenmgr or its stores.
package diagnose

import (
	"encoding/json"
	"log/slog"
)

// Status is the outcome of one [Check].
type Status string

// The outcomes of a check, from best to worst, and SKIP for a check that
// could not apply (no token to inspect, --offline, ...).
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is the outcome of one thing that can go wrong.
type Check struct {
	// Name says what was checked: "configuration", "store", "clock",
	// "credentials", ... Several checks may share a name.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Message says what was found, on one line.
	Message string `json:"message"`
	// Hint says what to do about a WARN or FAIL; it may be empty.
	Hint string `json:"hint,omitempty"`
}

// String is the check on one line: "FAIL store: message; hint: hint".
func (c Check) String() string {
	s := string(c.Status) + " " + c.Name + ": " + c.Message
	if c.Hint != "" {
		s += "; hint: " + c.Hint
	}
	return s
}

// LogValue logs the check as a group of its fields, the hint only when
// there is one.
func (c Check) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", c.Name),
		slog.String("status", string(c.Status)),
		slog.String("message", c.Message),
	}
	if c.Hint != "" {
		attrs = append(attrs, slog.String("hint", c.Hint))
	}
	return slog.GroupValue(attrs...)
}

// Report is a diagnosis: its checks in the order they ran.
type Report struct {
	Checks []Check `json:"checks"`
}

// Add appends checks to the report.
func (r *Report) Add(checks ...Check) { r.Checks = append(r.Checks, checks...) }

// Failed counts the checks with status [Fail].
func (r Report) Failed() int { return r.count(Fail) }

// Warnings counts the checks with status [Warn].
func (r Report) Warnings() int { return r.count(Warn) }

// OK reports whether no check failed (warnings allowed).
func (r Report) OK() bool { return r.Failed() == 0 }

func (r Report) count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// LogValue logs the counts and, as "problems", every check that failed
// or warned, so a start-up log line stays short when all is well.
func (r Report) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Bool("ok", r.OK()),
		slog.Int("failed", r.Failed()),
		slog.Int("warnings", r.Warnings()),
	}
	var problems []Check
	for _, c := range r.Checks {
		if c.Status == Fail || c.Status == Warn {
			problems = append(problems, c)
		}
	}
	if len(problems) > 0 {
		attrs = append(attrs, slog.Any("problems", problems))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes the report as "tokenmgr doctor --json" prints it:
// {"ok", "failed", "warnings", "checks"}. An empty report has "checks": [].
func (r Report) MarshalJSON() ([]byte, error) {
	checks := r.Checks
	if checks == nil {
		checks = []Check{}
	}
	return json.Marshal(struct {
		OK       bool    `json:"ok"`
		Failed   int     `json:"failed"`
		Warnings int     `json:"warnings"`
		Checks   []Check `json:"checks"`
	}{r.OK(), r.Failed(), r.Warnings(), checks})
}
