package envconfig

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every variable read is documented, in Vars order, and appears in
// NewFromEnv's table and the README's.
func TestDocsCoverVars(t *testing.T) {
	names := make([]string, len(Docs))
	for i, d := range Docs {
		names[i] = d.Name
		assert.NotEmpty(t, d.Doc, d.Name)
	}
	assert.Equal(t, Vars, names, "Docs must document Vars, in order")
	doc, err := os.ReadFile("../env.go") // NewFromEnv's doc
	assert.NoError(t, err)
	readme, err := os.ReadFile("../README.md")
	assert.NoError(t, err)
	for _, n := range Vars {
		base := strings.TrimSuffix(n, "_FILE") // documented with its variable
		assert.Contains(t, string(doc), "//\t"+base+" ", "NewFromEnv's table lacks %s", n)
		assert.Contains(t, string(readme), "`"+base+"`", "README's table lacks %s", n)
	}
}
