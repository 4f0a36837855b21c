package main

// In-process tests of run and the helpers.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/diagnose"
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
		if r.code != tc.code || !strings.Contains(r.stdout, tc.out) || !strings.Contains(r.stderr, tc.err) {
			t.Errorf("run %q: want exit %d, stdout ~%q, stderr ~%q; got %s", tc.args, tc.code, tc.out, tc.err, r)
		}
	}
	// Every command's help documents its exit status.
	for _, c := range commands {
		r := runIn(vars{}, c.name, "--help")
		if r.code != 0 || (c.name != "version" && !strings.Contains(r.stdout, "Exit status")) {
			t.Errorf("%s --help: %s", c.name, r)
		}
		if !c.noCommon && !strings.Contains(r.stdout, "-store-path") {
			t.Errorf("%s --help lacks the store flags", c.name)
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
	if r.code != 0 || !s.Valid(strings.TrimSpace(r.stdout)) {
		t.Fatalf("token --store-path: %s", r)
	}
	if r := runIn(env, "status"); r.code != 1 || !strings.Contains(r.stdout, "nothing stored") {
		t.Errorf("the environment's store should be empty: %s", r)
	}
	if r := runIn(env, "status", "--store-path", pathB); r.code != 0 || !strings.Contains(r.stdout, filepath.Base(filepath.Dir(pathB))) {
		t.Errorf("status --store-path: %s", r)
	}
	if r := runIn(env, "status", "--store-path", pathB, "--key", "other"); r.code != 1 || !strings.Contains(r.stdout, `"other"`) {
		t.Errorf("status --key other: %s", r)
	}
	if r := runIn(env, "status", "--store-path", pathB, "--store", "memory"); r.code != 1 || !strings.Contains(r.stdout, "in memory") {
		t.Errorf("status --store memory: %s", r)
	}
	if r := runIn(env.with("TOKENMGR_KEY", "other"), "status", "--store-path", pathB, "--key", "default"); r.code != 0 {
		t.Errorf("--key should win over TOKENMGR_KEY: %s", r)
	}
	if r := runIn(env, "status", "--store", "floppy"); r.code != 1 || !strings.Contains(r.stderr, "TOKENMGR_STORE") {
		t.Errorf("a bad --store is reported as the variable it overrides: %s", r)
	}
	if r := runIn(env, "logout", "--store-path", pathB); r.code != 0 || !strings.Contains(r.stdout, "deleted") {
		t.Errorf("logout --store-path: %s", r)
	}
}

func TestEnvLookupLayering(t *testing.T) {
	o := &options{key: "k", store: "", set: map[string]bool{"key": true, "store": true}}
	base := vars{"TOKENMGR_KEY": "env", "TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": "/p", "OTHER": "x"}
	l := o.envLookup(base.lookup)
	for name, want := range map[string]string{"TOKENMGR_KEY": "k", "TOKENMGR_STORE": "", "TOKENMGR_STORE_PATH": "/p", "OTHER": "x"} {
		if v, ok := l(name); !ok || v != want {
			t.Errorf("%s = %q, %v; want %q", name, v, ok, want)
		}
	}
	if _, ok := l("TOKENMGR_CHECK_URL"); ok {
		t.Error("an unset flag over an unset variable should be unset")
	}
}

func TestColour(t *testing.T) {
	var buf bytes.Buffer
	if useColor(&buf, vars{}.lookup) {
		t.Error("colour on a buffer")
	}
	if f, err := os.Open(os.DevNull); err == nil {
		defer f.Close()
		// /dev/null is a character device: the TTY test alone would say yes.
		if useColor(f, vars{"NO_COLOR": ""}.lookup) || useColor(f, vars{"TERM": "dumb"}.lookup) {
			t.Error("NO_COLOR or TERM=dumb ignored")
		}
	}
	out := &diagnose.Report{Checks: []diagnose.Check{{Name: "a", Status: diagnose.OK, Message: "m"}, {Name: "longer", Status: diagnose.Fail, Message: "x", Hint: "h"}}}
	printChecks(&buf, out, true)
	if !strings.Contains(buf.String(), "\x1b[31mFAIL\x1b[0m  longer  x; hint: h") || !strings.Contains(buf.String(), "\x1b[32mOK  \x1b[0m  a       m") {
		t.Errorf("coloured output:\n%q", buf.String())
	}
	buf.Reset()
	printChecks(&buf, out, false)
	if buf.String() != "OK    a       m\nFAIL  longer  x; hint: h\n1 failed\n" {
		t.Errorf("plain output:\n%q", buf.String())
	}
}

func TestReadStoreEnv(t *testing.T) {
	// Only the store variables: enough for status and logout.
	e, err := tokenmgr.ReadStoreEnv(vars{"TOKENMGR_STORE": "memory", "TOKENMGR_KEY": "k"}.lookup)
	if err != nil || e.Key != "k" || e.AccessToken != "" {
		t.Fatalf("store only: %+v %v", e, err)
	}
	// TOKEN_URL set without the client ID still reads the store settings.
	e, err = tokenmgr.ReadStoreEnv(vars{"TOKENMGR_TOKEN_URL": "https://x.example/token", "TOKENMGR_STORE": "memory"}.lookup)
	if err != nil || e.Store != "memory" {
		t.Fatalf("partial: %+v %v", e, err)
	}
	// Any other bad value is still an error.
	if _, err := tokenmgr.ReadStoreEnv(vars{"TOKENMGR_STORE": "floppy"}.lookup); err == nil || !strings.Contains(err.Error(), "TOKENMGR_STORE") {
		t.Fatalf("bad store: %v", err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestE2EHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "doctor"}, {"help", "aws", "credential-process"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "tokenmgr") || r.stderr != "" {
			t.Errorf("%v: %s", args, r)
		}
		if args[0] != "help" || len(args) == 1 {
			// The variables, from the library's table: a go install user
			// has no package docs.
			for _, d := range slices.Concat(tokenmgr.EnvDocs, diagnose.EnvDocs, awscreds.EnvDocs) {
				if !strings.Contains(r.stdout, d.Name+"  ") || !strings.Contains(r.stdout, d.Doc) {
					t.Errorf("%v: %s is not listed with its doc", args, d.Name)
				}
			}
		}
	}
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			r := exe(t, &secrets{}, vars{}, c.name, h)
			wantCode(t, r, 0)
			if !strings.HasPrefix(r.stdout, "Usage: tokenmgr "+c.name+" [flags]") || r.stderr != "" {
				t.Errorf("%s %s: %s", c.name, h, r)
			}
		}
	}
	r := exe(t, &secrets{}, vars{}, "version")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "tokenmgr ") {
		t.Errorf("version: %s", r)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"status", "--bogus"}, {"token", "extra"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 2)
		if r.stderr == "" {
			t.Errorf("%v: usage error with empty stderr", args)
		}
	}
}
