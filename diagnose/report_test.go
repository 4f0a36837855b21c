package diagnose_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose"
)

func TestReportCounts(t *testing.T) {
	var r diagnose.Report
	assert.True(t, r.OK())
	r.Add(diagnose.Check{Name: "a", Status: diagnose.OK},
		diagnose.Check{Name: "b", Status: diagnose.Warn},
		diagnose.Check{Name: "c", Status: diagnose.Fail},
		diagnose.Check{Name: "d", Status: diagnose.Fail},
		diagnose.Check{Name: "e", Status: diagnose.Skip})
	assert.Equal(t, 2, r.Failed())
	assert.Equal(t, 1, r.Warnings())
	assert.False(t, r.OK())
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(diagnose.Report{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"ok":true,"failed":0,"warnings":0,"checks":[]}`, string(b))

	r := diagnose.Report{Checks: []diagnose.Check{
		{Name: "store", Status: diagnose.Fail, Message: "m", Hint: "h"},
		{Name: "clock", Status: diagnose.OK, Message: "fine"},
	}}
	b, err = json.Marshal(&r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"ok":false,"failed":1,"warnings":0,"checks":[
		{"name":"store","status":"FAIL","message":"m","hint":"h"},
		{"name":"clock","status":"OK","message":"fine"}]}`, string(b))

	var back diagnose.Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r, back)
}

func TestReportLogValue(t *testing.T) {
	r := diagnose.Report{Checks: []diagnose.Check{
		{Name: "store", Status: diagnose.Fail, Message: "cannot open", Hint: "fix it"},
		{Name: "clock", Status: diagnose.OK, Message: "fine"},
	}}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("diagnosis", "report", r)
	var line struct {
		Report struct {
			OK       bool             `json:"ok"`
			Failed   int              `json:"failed"`
			Problems []diagnose.Check `json:"problems"`
		} `json:"report"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.False(t, line.Report.OK)
	assert.Equal(t, 1, line.Report.Failed)
	assert.Equal(t, []diagnose.Check{r.Checks[0]}, line.Report.Problems, "only what is not OK is logged")

	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("check", "check", diagnose.Check{Name: "clock", Status: diagnose.OK, Message: "fine"})
	assert.Contains(t, buf.String(), `"check":{"name":"clock","status":"OK","message":"fine"}`)
}

func TestCheckString(t *testing.T) {
	assert.Equal(t, "OK clock: fine", diagnose.Check{Name: "clock", Status: diagnose.OK, Message: "fine"}.String())
	assert.Equal(t, "FAIL store: m; hint: h", diagnose.Check{Name: "store", Status: diagnose.Fail, Message: "m", Hint: "h"}.String())
}
