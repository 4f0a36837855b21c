package awscreds

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test ends with no goroutine of its own left: Close ends the
// Provider's background refreshes.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
