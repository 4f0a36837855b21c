package tokenmgr

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every variable read is documented, in EnvVars order, and appears in
// NewFromEnv's table and the README's.
func TestEnvDocsCoverEnvVars(t *testing.T) {
	names := make([]string, len(EnvDocs))
	for i, d := range EnvDocs {
		names[i] = d.Name
		assert.NotEmpty(t, d.Doc, d.Name)
	}
	assert.Equal(t, EnvVars, names, "EnvDocs must document EnvVars, in order")
	doc, err := os.ReadFile("env.go") // NewFromEnv's doc
	assert.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	assert.NoError(t, err)
	for _, n := range EnvVars {
		base := strings.TrimSuffix(n, "_FILE") // documented with its variable
		assert.Contains(t, string(doc), "//\t"+base+" ", "NewFromEnv's table lacks %s", n)
		assert.Contains(t, string(readme), "`"+base+"`", "README's table lacks %s", n)
	}
}
