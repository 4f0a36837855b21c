package main

// The OTEL_* variables the CLI honours, read as OpenTelemetry's SDKs read
// them. This file is in every build; the export itself is in telemetry.go,
// built with -tags otel (see telemetry_off.go).

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tokenmgr/tokenmgr/display"
)

// otelDocs are the OTEL_* variables the CLI honours, for --help.
var otelDocs = []struct{ Name, Doc string }{
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector to export traces and metrics to (http://host:4318)"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "the same for traces alone (full URL, .../v1/traces)"},
	{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "the same for metrics alone (full URL, .../v1/metrics)"},
	{"OTEL_TRACES_EXPORTER", "otlp: export traces (default endpoint localhost:4318); none: do not"},
	{"OTEL_METRICS_EXPORTER", "otlp: export metrics (default endpoint localhost:4318); none: do not"},
	{"OTEL_EXPORTER_OTLP_HEADERS", "headers of the export (never printed); other OTEL_EXPORTER_OTLP_*"},
	{"OTEL_SERVICE_NAME", "service.name of the export (default tokenmgr)"},
	{"OTEL_SDK_DISABLED", "true: export nothing, whatever the other OTEL_* say"},
}

// signalWanted says whether one signal (TRACES, METRICS) is to be
// exported, as OpenTelemetry's SDKs read the variables: OTEL_<S>_EXPORTER
// otlp, or unset with an OTLP endpoint given.
func signalWanted(lookup func(string) (string, bool), signal string) (bool, string) {
	switch v, _ := lookup("OTEL_" + signal + "_EXPORTER"); strings.TrimSpace(v) {
	case "otlp":
		return true, ""
	case "", "none":
		if v != "" {
			return false, ""
		}
	default:
		return false, fmt.Sprintf("OTEL_%s_EXPORTER=%q: tokenmgr exports otlp only; nothing is exported", signal, display.Cut(v, 40))
	}
	_, all := lookup("OTEL_EXPORTER_OTLP_ENDPOINT")
	_, one := lookup("OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT")
	return all || one, ""
}

// otlpURL is where a signal is exported, as the OTLP/HTTP exporters
// choose it, without user information or query, for messages.
func otlpURL(lookup func(string) (string, bool), signal, path string) string {
	raw, ok := lookup("OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT")
	general := !ok
	if general {
		if raw, ok = lookup("OTEL_EXPORTER_OTLP_ENDPOINT"); !ok {
			raw = "https://localhost:4318"
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "an invalid OTLP endpoint"
	}
	if general {
		u.Path = strings.TrimSuffix(u.Path, "/") + path
		u.RawPath = ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return display.Cut(u.String(), 200)
}
