//go:build !windows

package tokenmgr

import "syscall"

// connRefusedOS is how this system says a connection was refused.
var connRefusedOS error = syscall.ECONNREFUSED
