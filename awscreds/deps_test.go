package awscreds

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// awscreds is on the SDK path: it links neither the doctor's rules (the
// diagnose module, whose awsdiag builds on awscreds) nor a JWT parser.
// Before, it imported diagnose, and so go-jose.
func TestNoDiagnoseOnTheSDKPath(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(dep, "github.com/tokenmgr/tokenmgr/diagnose"), "awscreds links %s", dep)
		require.False(t, strings.Contains(dep, "go-jose"), "awscreds links %s", dep)
	}
}
