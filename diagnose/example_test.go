package diagnose_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/envconfig"
)

// A service logs a diagnosis at start-up: one line, with the checks that
// failed or warned.
func ExampleReport_LogValue() {
	r := diagnose.Report{Checks: []diagnose.Check{
		{Name: "configuration", Status: diagnose.OK, Message: "client credentials grant"},
		{Name: "clock", Status: diagnose.Warn, Message: "the token endpoint's Date header is 45s ahead of this machine's clock", Hint: "enable NTP"},
	}}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output for this example
			}
			return a
		},
	}))
	logger.Info("tokenmgr diagnosis", "diagnosis", r)
	// Output:
	// level=INFO msg="tokenmgr diagnosis" diagnosis.ok=true diagnosis.failed=0 diagnosis.warnings=1 diagnosis.problems="[WARN clock: the token endpoint's Date header is 45s ahead of this machine's clock; hint: enable NTP]"
}

// A service runs the diagnosis at start-up and logs it: here for a static
// token that is not a JWT, whose expiry nothing can tell.
func ExampleRun() {
	env := map[string]string{"TOKENMGR_ACCESS_TOKEN": "an-opaque-token"}
	report := diagnose.Run(context.Background(), diagnose.Options{
		Lookup:  func(name string) (string, bool) { v, ok := env[name]; return v, ok },
		Offline: true, // no network in this example
	})
	for _, c := range report.Checks {
		if c.Status == diagnose.Warn || c.Status == diagnose.Fail {
			fmt.Println(c.Status, c.Name)
		}
	}
	fmt.Println("ok:", report.OK())
	// Output:
	// WARN token format
	// WARN expiry
	// ok: true
}

// A program that fails to get a token says what to do about it, in the
// words "tokenmgr doctor" uses.
func ExampleExplain() {
	env := map[string]string{"TOKENMGR_TOKEN_URL": "https://auth.example.com/token", "TOKENMGR_CLIENT_ID": "svc"}
	_, err := envconfig.Read(func(name string) (string, bool) { v, ok := env[name]; return v, ok }, envconfig.NeedCredential)
	msg, _ := diagnose.Explain(err, nil) // the message says what to set: no hint
	fmt.Println(msg)

	err = &tokenmgr.TokenError{Code: "invalid_scope", StatusCode: 400}
	msg, hint := diagnose.Explain(err, &envconfig.Env{Scopes: []string{"read", "admin"}})
	fmt.Println(msg)
	fmt.Println("hint:", hint)
	// Output:
	// TOKENMGR_CLIENT_SECRET: not set (the client credentials grant needs it, or its _FILE form; or set TOKENMGR_REFRESH_TOKEN)
	// invalid_scope: a requested scope is unknown or not allowed for this client (HTTP 400)
	// hint: check TOKENMGR_SCOPES (requested: read admin) against what the client may ask for
}
