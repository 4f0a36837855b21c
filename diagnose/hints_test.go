package diagnose_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/store"
)

// A shared store's errors get hints about Redis, not about the file.
func TestHintsForASharedStore(t *testing.T) {
	down := fmt.Errorf("redisstore: Redis at 10.0.0.1:6379: load: %w (dial tcp: connection refused)", store.ErrUnavailable)
	assert.Contains(t, diagnose.Hint(down), "TOKENMGR_REDIS_URL")
	wrong := fmt.Errorf("redisstore: Redis at 10.0.0.1:6379: %w: the header record was made with another passphrase", store.ErrWrongKey)
	assert.Contains(t, diagnose.Hint(wrong), "same passphrase")
	assert.NotContains(t, diagnose.Hint(wrong), "file")
	assert.Contains(t, diagnose.Hint(&tokenmgr.EnvError{Var: "TOKENMGR_REDIS_URL", Problem: "not a URL"}), "rediss://")
}
