package awscreds

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/envconfig"
)

// Without a token file the web identity token is an OAuth credential kept
// in the same store as the AWS credentials. Under one name, the Provider's
// refresh would hold that name's lock while the web identity Client waits
// for it (a hang until the deadline), and each would overwrite the other's
// value. NewProvider refuses the configuration, naming the variable.
func TestNewProviderRefusesOneNameForBothCredentials(t *testing.T) {
	idp, _, base := oauthWebIdentity(t, "AWS_ENDPOINT_URL")
	for name, c := range map[string]struct {
		env    map[string]string
		blamed string
	}{
		"TOKENMGR_AWS_KEY=TOKENMGR_KEY": {map[string]string{"TOKENMGR_KEY": "app", "TOKENMGR_AWS_KEY": "app"}, "TOKENMGR_AWS_KEY"},
		"TOKENMGR_AWS_KEY=default":      {map[string]string{"TOKENMGR_AWS_KEY": tokenmgr.DefaultKey}, "TOKENMGR_AWS_KEY"},
		"TOKENMGR_KEY=aws:role":         {map[string]string{"TOKENMGR_KEY": "aws:" + testRole}, "TOKENMGR_KEY"},
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			for k, v := range c.env {
				m[k] = v
			}
			e, err := ReadEnv(mapLookup(m))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			p, err := e.NewProvider(ctx)
			if err == nil {
				_, err = p.Retrieve(ctx)
				p.Close()
				require.Fail(t, "NewProvider accepted one name for both credentials", "Retrieve: %v", err)
			}
			var ee *envconfig.Error
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, c.blamed, ee.Var)
			assert.Zero(t, idp.TokenRequests.Load())
		})
	}
}
