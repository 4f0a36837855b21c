//go:build !unix

package secretfile

const openNonblock = 0
