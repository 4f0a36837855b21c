//go:build unix

package store

import "syscall"

// openNonblock opens a FIFO without waiting for a writer; it changes
// nothing for a regular file.
const openNonblock = syscall.O_NONBLOCK
