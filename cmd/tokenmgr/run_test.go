package main

// In-process tests of run and the helpers.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestRunUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{nil, 2, "", "Commands:"},
		{[]string{"--help"}, 0, "Commands:", ""},
		{[]string{"help", "status"}, 0, "Usage: tokenmgr status", ""},
		{[]string{"help", "nope"}, 2, "", "unknown command"},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"doctor", "--json=maybe"}, 2, "", "doctor --help"},
		{[]string{"logout", "now"}, 2, "", `unexpected argument "now"`},
		{[]string{"version"}, 0, "tokenmgr devel", ""},
		{[]string{"--version"}, 0, "tokenmgr ", ""},
		{[]string{"version", "--help"}, 0, "Usage: tokenmgr version", ""},
	} {
		r := runIn(vars{}, tc.args...)
		assert.Equal(t, tc.code, r.code, "run %q: %s", tc.args, r)
		assert.Contains(t, r.stdout, tc.out, "run %q", tc.args)
		assert.Contains(t, r.stderr, tc.err, "run %q", tc.args)
	}
	// The command list is a column: every summary starts where the others do.
	help := runIn(vars{}, "--help").stdout
	col := -1
	for _, c := range commands {
		i := strings.Index(help, "\n  "+c.name+" ")
		require.GreaterOrEqual(t, i, 0, "%q listed", c.name)
		line := help[i+1:]
		line = line[:strings.IndexByte(line, '\n')]
		at := strings.Index(line, c.summary)
		require.Positive(t, at, "%q", line)
		if col < 0 {
			col = at
		}
		assert.Equal(t, col, at, "summary column of %q", line)
	}
	// Every command's help documents its exit status.
	for _, c := range commands {
		r := runIn(vars{}, c.name, "--help")
		assert.Equal(t, 0, r.code, "%s --help: %s", c.name, r)
		if c.name != "version" {
			assert.Contains(t, r.stdout, "Exit status", "%s --help", c.name)
		}
		if !c.noCommon {
			assert.Contains(t, r.stdout, "-store-path", "%s --help lists the store flags", c.name)
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	a, b := fileStoreVars(t), fileStoreVars(t)
	env := a.with(oauthVars(s).flat()...)
	pathB := b["TOKENMGR_STORE_PATH"]

	r := runIn(env, "token", "--store-path", pathB)
	require.Equal(t, 0, r.code, "token --store-path: %s", r)
	require.True(t, s.Valid(strings.TrimSpace(r.stdout)), "token --store-path prints a valid token")
	for _, tc := range []struct {
		what     string
		env      vars
		args     []string
		code     int
		out, err string
	}{
		{"the environment's store is empty", env, []string{"status"}, 1, "nothing stored", ""},
		{"status --store-path", env, []string{"status", "--store-path", pathB}, 0, filepath.Base(filepath.Dir(pathB)), ""},
		{"status --key other", env, []string{"status", "--store-path", pathB, "--key", "other"}, 1, `"other"`, ""},
		{"status --store memory", env, []string{"status", "--store-path", pathB, "--store", "memory"}, 1, "in memory", ""},
		{"--key wins over TOKENMGR_KEY", env.with("TOKENMGR_KEY", "other"), []string{"status", "--store-path", pathB, "--key", "default"}, 0, "", ""},
		{"a bad --store is reported as the variable it overrides", env, []string{"status", "--store", "floppy"}, 1, "", "TOKENMGR_STORE"},
		{"logout --store-path", env, []string{"logout", "--store-path", pathB}, 0, "deleted", ""},
	} {
		r := runIn(tc.env, tc.args...)
		assert.Equal(t, tc.code, r.code, "%s: %s", tc.what, r)
		assert.Contains(t, r.stdout, tc.out, tc.what)
		assert.Contains(t, r.stderr, tc.err, tc.what)
	}
}

func TestEnvLookupLayering(t *testing.T) {
	o := &options{key: "k", store: "", set: map[string]bool{"key": true, "store": true}}
	base := vars{"TOKENMGR_KEY": "env", "TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": "/p", "OTHER": "x"}
	l := o.envLookup(base.lookup)
	for name, want := range map[string]string{"TOKENMGR_KEY": "k", "TOKENMGR_STORE": "", "TOKENMGR_STORE_PATH": "/p", "OTHER": "x"} {
		v, ok := l(name)
		assert.True(t, ok, "%s is set", name)
		assert.Equal(t, want, v, name)
	}
	_, ok := l("TOKENMGR_CHECK_URL")
	assert.False(t, ok, "an unset flag over an unset variable is unset")
}

func TestColour(t *testing.T) {
	var buf bytes.Buffer
	assert.False(t, useColor(&buf, vars{}.lookup), "no colour on a buffer")
	if f, err := os.Open(os.DevNull); err == nil {
		defer f.Close()
		// /dev/null is a character device: the TTY test alone would say yes.
		assert.False(t, useColor(f, vars{"NO_COLOR": ""}.lookup), "NO_COLOR")
		assert.False(t, useColor(f, vars{"TERM": "dumb"}.lookup), "TERM=dumb")
	}
	out := &diagnose.Report{Checks: []diagnose.Check{{Name: "a", Status: diagnose.OK, Message: "m"}, {Name: "longer", Status: diagnose.Fail, Message: "x", Hint: "h"}}}
	printChecks(&buf, out, true)
	assert.Contains(t, buf.String(), "\x1b[31mFAIL\x1b[0m  longer  x; hint: h", "coloured output")
	assert.Contains(t, buf.String(), "\x1b[32mOK  \x1b[0m  a       m", "coloured output")
	buf.Reset()
	printChecks(&buf, out, false)
	assert.Equal(t, "OK    a       m\nFAIL  longer  x; hint: h\n1 failed\n", buf.String(), "plain output")
}

func TestReadStoreEnv(t *testing.T) {
	// Only the store variables: enough for status and logout.
	e, err := envconfig.Read(vars{"TOKENMGR_STORE": "memory", "TOKENMGR_KEY": "k"}.lookup, envconfig.NeedStore)
	require.NoError(t, err, "store only")
	assert.Equal(t, "k", e.Key)
	assert.Empty(t, e.AccessToken)
	// TOKEN_URL set without the client ID still reads the store settings.
	e, err = envconfig.Read(vars{"TOKENMGR_TOKEN_URL": "https://x.example/token", "TOKENMGR_STORE": "memory"}.lookup, envconfig.NeedStore)
	require.NoError(t, err, "partial")
	assert.Equal(t, "memory", e.Store)
	// Any other bad value is still an error.
	_, err = envconfig.Read(vars{"TOKENMGR_STORE": "floppy"}.lookup, envconfig.NeedStore)
	require.ErrorContains(t, err, "TOKENMGR_STORE", "bad store")
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestE2EHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "doctor"}, {"help", "aws", "credential-process"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 0)
		assert.Contains(t, r.stdout, "Usage:", "%v", args)
		assert.Contains(t, r.stdout, "tokenmgr", "%v", args)
		assert.Empty(t, r.stderr, "%v", args)
		if args[0] != "help" || len(args) == 1 {
			// The variables, from the library's table: a go install user
			// has no package docs.
			for _, d := range slices.Concat(envconfig.Docs, diagnose.EnvDocs, awscreds.EnvDocs) {
				assert.Contains(t, r.stdout, d.Name+"  ", "%v lists %s", args, d.Name)
				assert.Contains(t, r.stdout, d.Doc, "%v lists %s with its doc", args, d.Name)
			}
		}
	}
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			r := exe(t, &secrets{}, vars{}, c.name, h)
			wantCode(t, r, 0)
			assert.True(t, strings.HasPrefix(r.stdout, "Usage: tokenmgr "+c.name+" [flags]"), "%s %s: %s", c.name, h, r)
			assert.Empty(t, r.stderr, "%s %s", c.name, h)
		}
	}
	r := exe(t, &secrets{}, vars{}, "version")
	wantCode(t, r, 0)
	assert.True(t, strings.HasPrefix(r.stdout, "tokenmgr "), "version: %s", r)
	for _, args := range [][]string{{}, {"frobnicate"}, {"status", "--bogus"}, {"token", "extra"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 2)
		assert.NotEmpty(t, r.stderr, "%v: a usage error says so on stderr", args)
	}
}

func TestReadVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/tokenmgr/tokenmgr/cmd/tokenmgr", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-07T21:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	v := readVersion(bi)
	assert.Equal(t, "tokenmgr devel 0123456789ab+dirty (go1.26.8)", v.String())
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", v.Revision)
	assert.Equal(t, time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC), v.Time)

	bi.Main.Version = "v1.4.0"
	bi.Settings = nil
	assert.Equal(t, "tokenmgr v1.4.0 (go1.26.8)", readVersion(bi).String())
	assert.Equal(t, "tokenmgr devel ("+runtime.Version()+")", readVersion(nil).String())
}

// The binary the tests build reports what the toolchain wrote into it,
// as JSON too.
func TestVersionJSON(t *testing.T) {
	r := exe(t, &secrets{}, vars{}, "version", "--json")
	wantCode(t, r, 0)
	var v struct{ Module, Version, Go string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	assert.Equal(t, "github.com/tokenmgr/tokenmgr/cmd/tokenmgr", v.Module)
	assert.Equal(t, runtime.Version(), v.Go)
	assert.NotEmpty(t, v.Version)
}
