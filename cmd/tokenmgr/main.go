// Command tokenmgr gets, shows and diagnoses the OAuth token tokenmgr
// manages for a credential, configured by the TOKENMGR_* variables (see
// the tokenmgr package documentation).
//
//	tokenmgr token     print the current valid access token
//	tokenmgr login     sign a person in (browser, or --device) and keep the result
//	tokenmgr status    show what is held for the credential, never the token
//	tokenmgr list      list the credentials in the store and whose each is
//	tokenmgr doctor    check each thing that can go wrong, one line each
//	tokenmgr logout    delete the stored credential
//	tokenmgr version   print the version
//
// Run "tokenmgr <command> --help" for a command's flags and exit codes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// Exit codes shared by the commands.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// help is the text printed by --help above the flags.
	help string
	// flags adds the command's own flags; the common ones are added for
	// every command but version.
	flags func(fs *flag.FlagSet, o *options)
	run   func(ctx context.Context, o *options, stdout, stderr io.Writer) int
	// noCommon: the command takes no store or credential flags.
	noCommon bool
}

// options are the parsed flags of one invocation.
type options struct {
	key, store, storePath string
	timeout               time.Duration
	json                  bool
	verbose               bool
	// token
	format       string
	forceRefresh bool
	// logout
	reset, revoke bool
	// login
	device, noBrowser bool
	listen            string
	// doctor
	checkURL, jwksURL string
	offline           bool

	// tel exports telemetry; nil unless the OTEL_* variables ask for it.
	tel *telemetry

	set    map[string]bool // flags given on the command line
	lookup func(string) (string, bool)
	// env reads the variables alone, without the flags layered over them.
	env func(string) (string, bool)
}

// envLookup layers the flags that override variables over base: --key,
// --store and --store-path answer for TOKENMGR_KEY, TOKENMGR_STORE and
// TOKENMGR_STORE_PATH when given, and so do --check-url and --jwks-url
// for TOKENMGR_CHECK_URL and TOKENMGR_JWKS_URL.
func (o *options) envLookup(base func(string) (string, bool)) func(string) (string, bool) {
	over := map[string]struct {
		flag string
		val  *string
	}{
		"TOKENMGR_KEY":        {"key", &o.key},
		"TOKENMGR_STORE":      {"store", &o.store},
		"TOKENMGR_STORE_PATH": {"store-path", &o.storePath},
		"TOKENMGR_CHECK_URL":  {"check-url", &o.checkURL},
		"TOKENMGR_JWKS_URL":   {"jwks-url", &o.jwksURL},
	}
	return func(name string) (string, bool) {
		if f, ok := over[name]; ok && o.set[f.flag] {
			return *f.val, true
		}
		return base(name)
	}
}

var commands []*command

func init() {
	commands = []*command{tokenCommand, loginCommand, statusCommand, listCommand, doctorCommand, logoutCommand, versionCommand, awsCredentialProcessCommand}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const mainHelp = `tokenmgr gets, shows and diagnoses the OAuth token of one credential.

Usage:
  tokenmgr <command> [flags]

Commands:
%s
Configuration comes from these variables (the flags --key, --store and
--store-path override TOKENMGR_KEY, TOKENMGR_STORE and TOKENMGR_STORE_PATH):

%s

No command prints a secret, except "token" and "aws credential-process",
whose output is the token or the AWS credentials.

%s

Run "tokenmgr <command> --help" for a command's flags and exit codes.
`

func printMainHelp(w io.Writer) {
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, mainHelp, b.String(), variablesHelp(), otelHelp(telemetryBuilt))
}

// variablesHelp lists the variables from the library's own tables: a user
// of "go install" has no package docs at hand.
func variablesHelp() string {
	docs := slices.Concat(envconfig.Docs, diagnose.EnvDocs, awscreds.EnvDocs)
	width := 0
	for _, d := range docs {
		width = max(width, len(d.Name))
	}
	var b strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, d.Name, d.Doc)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// otelHelp says whether this build exports, and lists the OTEL_*
// variables it honours when it does.
func otelHelp(built bool) string {
	if !built {
		return `This build exports no telemetry: one built with
"go install -tags otel github.com/tokenmgr/tokenmgr/cmd/tokenmgr@..."
exports traces and metrics over OTLP/HTTP when OpenTelemetry's OTEL_*
variables ask for it (OTEL_EXPORTER_OTLP_ENDPOINT, ...).`
	}
	width := 0
	for _, d := range otelDocs {
		width = max(width, len(d.Name))
	}
	var b strings.Builder
	b.WriteString(`When OpenTelemetry's variables ask for it, "token" and "aws
credential-process" export their refreshes' traces and metrics (package
oteltokenmgr) over OTLP/HTTP, and "doctor" and "login" a span of the run;
the export is made at exit, within 2 s, and a failed one is a warning:

`)
	for _, d := range otelDocs {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, d.Name, d.Doc)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// run is the whole program: it parses args (without the program name),
// writes to stdout and stderr, reads variables through lookup (nil means
// os.LookupEnv) and returns the exit code.
func run(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if len(args) == 0 {
		printMainHelp(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			if c := findCommand(strings.Join(args[1:], " ")); c != nil { // "help aws credential-process"
				printHelp(c, newFlagSet(c, &options{}), stdout)
				return exitOK
			}
			fmt.Fprintf(stderr, "tokenmgr: unknown command %q\n", args[1])
			return exitUsage
		}
		printMainHelp(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	if name == "aws" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		name, args = "aws "+args[1], args[1:] // a command of the aws group
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(stderr, "tokenmgr: unknown command %q; run \"tokenmgr --help\" for the list\n", display.OneLine(name))
		return exitUsage
	}
	o := &options{set: map[string]bool{}}
	fs := newFlagSet(c, o)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the flag package calls it for -h too; help goes to stdout below
	usageHint := func() { fmt.Fprintf(stderr, "run \"tokenmgr %s --help\" for usage\n", c.name) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(c, fs, stdout)
			return exitOK
		}
		usageHint() // the flag package printed the error
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tokenmgr %s: unexpected argument %q\n", c.name, display.OneLine(fs.Arg(0)))
		usageHint()
		return exitUsage
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	o.lookup, o.env = o.envLookup(lookup), lookup

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if exports[c.name] {
		o.tel = startTelemetry(ctx, lookup, stderr)
		defer o.tel.shutdown()
	}
	ctx, end := o.tel.command(ctx, c.name)
	code := c.run(ctx, o, stdout, stderr)
	end(code)
	return code
}

// exports are the commands that export telemetry when the OTEL_*
// variables ask for it: those that get a token or check the credentials.
var exports = map[string]bool{"token": true, "aws credential-process": true, "doctor": true, "login": true}

func newFlagSet(c *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenmgr "+c.name, flag.ContinueOnError)
	if !c.noCommon {
		keyHelp := "credential name in the store (overrides TOKENMGR_KEY; default \"" + tokenmgr.DefaultKey + "\")"
		if c.name == "aws credential-process" {
			keyHelp = "the AWS credentials' name in the store (overrides TOKENMGR_AWS_KEY; default \"aws:\" + AWS_ROLE_ARN)"
		}
		fs.StringVar(&o.key, "key", "", keyHelp)
		fs.StringVar(&o.store, "store", "", "store: auto, keyring, file, memory or redis (overrides TOKENMGR_STORE; default auto)")
		fs.StringVar(&o.storePath, "store-path", "", "the encrypted file of the file store (overrides TOKENMGR_STORE_PATH)")
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	}
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

func printHelp(c *command, fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: tokenmgr %s [flags]\n\n%s\n", c.name, strings.TrimSpace(c.help))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags (-flag and --flag are the same):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// fail prints err as one line on stderr, prefixed with the command, and
// returns exitFail. Errors of tokenmgr and its stores never hold a secret.
func fail(stderr io.Writer, cmd string, err error) int {
	return failEnv(stderr, cmd, err, nil)
}

// failEnv is fail with what to do about err (see [diagnose.Explain]) for
// the configuration env (nil when unknown), every secret env knows of
// redacted: defence in depth against an endpoint that echoes one.
func failEnv(stderr io.Writer, cmd string, err error, env *envconfig.Env) int {
	_, hint := diagnose.Explain(err, env)
	return printFail(stderr, cmd, err, hint, env)
}

// failHint is fail with a hint the caller found (awsdiag.Explain's).
func failHint(stderr io.Writer, cmd string, err error, hint string) int {
	return printFail(stderr, cmd, err, hint, nil)
}

func printFail(stderr io.Writer, cmd string, err error, hint string, env *envconfig.Env) int {
	line := "tokenmgr " + cmd + ": " + strings.TrimPrefix(err.Error(), "tokenmgr: ")
	if hint != "" {
		line += "; hint: " + hint
	}
	if env != nil {
		line = env.Redactor().Redact(line)
	}
	fmt.Fprintln(stderr, display.OneLine(line))
	return exitFail
}

var versionCommand = &command{
	name:     "version",
	summary:  "print the version",
	noCommon: true,
	help: `Prints tokenmgr's module version ("devel" for a build from a work tree),
the VCS revision it was built from (with "+dirty" when the work tree had
changes) and the Go version it was built with, all from the binary's
build information.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	},
	run: func(_ context.Context, o *options, stdout, stderr io.Writer) int {
		bi, _ := debug.ReadBuildInfo()
		v := readVersion(bi)
		if !o.json {
			fmt.Fprintln(stdout, v)
			return exitOK
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fail(stderr, "version", err)
		}
		return exitOK
	},
}

// version is what the version command prints, from the build information
// the Go toolchain writes into the binary.
type version struct {
	Module   string    `json:"module"`
	Version  string    `json:"version"`            // "devel" for a build from a work tree
	Revision string    `json:"revision,omitempty"` // the VCS commit, when built in a checkout
	Time     time.Time `json:"time,omitzero"`      // the commit's time
	Modified bool      `json:"modified,omitempty"` // the work tree had uncommitted changes
	Go       string    `json:"go"`
}

// readVersion reads bi, which is nil when the binary has none (built
// without module support).
func readVersion(bi *debug.BuildInfo) version {
	v := version{Module: "github.com/tokenmgr/tokenmgr/cmd/tokenmgr", Version: "devel", Go: runtime.Version()}
	if bi == nil {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line the version command prints: "tokenmgr v1.2.0
// (go1.26.8)", or "tokenmgr devel 0123456789ab+dirty (go1.26.8)".
func (v version) String() string {
	s := "tokenmgr " + v.Version
	if v.Revision != "" {
		s += " " + v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			s += "+dirty"
		}
	}
	return s + " (" + v.Go + ")"
}
