//go:build !unix

package store

// openNonblock is unix's O_NONBLOCK; elsewhere opening does not block on
// the kinds of file that make it block there.
const openNonblock = 0
