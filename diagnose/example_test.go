package diagnose_test

import (
	"log/slog"
	"os"

	"github.com/tokenmgr/tokenmgr/diagnose"
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
