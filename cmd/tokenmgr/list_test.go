package main

// One store, several credentials: a set-up never overwrites another's
// credential under the same name (tokenmgr.ErrKeyInUse), and list and
// status say whose each credential is.

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// "aws credential-process --key default" over the OAuth credential
// "default" refuses, naming both, and keeps the OAuth record with its
// rotated refresh token: before, it replaced it, and the next "token"
// redeemed the used-up seed (invalid_grant: sign in again). An OAuth
// set-up with other scopes under the same name is refused the same way.
func TestAWSCredentialProcessDoesNotOverwriteOAuthCredential(t *testing.T) {
	oauth, sec := oauthServer(t, tokenmgrtest.Options{Rotate: true})
	srv, awsEnv := awsVars(t)
	seed := oauth.IssueRefreshToken()
	sec.add(seed, "web-identity-token")
	sec.watch(func() []string {
		var s []string
		for _, x := range srv.Sessions() {
			s = append(s, x.SecretAccessKey, x.SessionToken)
		}
		return s
	})
	env := awsEnv.with(oauthVars(oauth).flat()...).with("TOKENMGR_REFRESH_TOKEN", seed)

	wantCode(t, exe(t, sec, env, "token"), 0)
	r := exe(t, sec, env, "aws", "credential-process", "--key", "default")
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout)
	for _, w := range []string{`"default"`, "an OAuth token of another configuration (refresh_token grant at " + oauth.TokenURL(),
		"AWS role " + awsRole, "nothing was overwritten", "TOKENMGR_AWS_KEY", "tokenmgr list"} {
		assert.Contains(t, r.stderr, w)
	}
	assert.Zero(t, srv.AssumeCalls())

	// The OAuth credential is intact: a refresh redeems its rotated
	// refresh token, not the used-up seed.
	wantCode(t, exe(t, sec, env, "token", "--force-refresh"), 0)
	assert.Zero(t, oauth.InvalidGrants.Load())

	// Another OAuth configuration (other scopes) under "default": refused.
	r = exe(t, sec, env.with("TOKENMGR_SCOPES", "other"), "token")
	wantCode(t, r, 1)
	assert.Contains(t, r.stderr, "refresh_token grant at "+oauth.TokenURL()+", client "+oauth.ClientID+", scopes other")
	assert.Contains(t, r.stderr, "--key or TOKENMGR_KEY")
	wantCode(t, exe(t, sec, env, "token", "--force-refresh"), 0)
	assert.Zero(t, oauth.InvalidGrants.Load())

	// Names of their own are the way out; list shows whose each is.
	wantCode(t, runIn(env, "aws", "credential-process", "--key", "aws-app"), 0) // prints the credentials
	r = exe(t, sec, env, "list")
	wantCode(t, r, 0)
	for _, w := range []string{"CREDENTIAL", "default", "an OAuth token", "refresh_token grant at " + oauth.TokenURL(),
		"aws-app", "AWS credentials", "AWS role " + awsRole} {
		assert.Contains(t, r.stdout, w)
	}
	r = exe(t, sec, env, "list", "--json")
	wantCode(t, r, 0)
	var items []listJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &items), "%v", r)
	require.Len(t, items, 2)
	assert.Equal(t, "aws-app", items[0].Credential)
	assert.Equal(t, "AWS credentials", items[0].Holds)
	assert.NotNil(t, items[0].Expiry)
	assert.Equal(t, "default", items[1].Credential)
	assert.Contains(t, items[1].Configuration, "client "+oauth.ClientID)

	r = exe(t, sec, env, "status", "--key", "aws-app")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "saved by")
	assert.Contains(t, r.stdout, "AWS role "+awsRole)
	assert.EqualValues(t, 1, srv.AssumeCalls())
}

// list says plainly when the store cannot enumerate its names.
func TestListKeyringCannotList(t *testing.T) {
	r := runIn(vars{"TOKENMGR_STORE": "keyring", "HOME": t.TempDir()}, "list")
	wantCode(t, r, 1)
	assert.Contains(t, r.stderr, "cannot list")
	assert.Contains(t, r.stderr, "tokenmgr status --key")
}
