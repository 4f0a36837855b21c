package tokenmgr

import winsys "golang.org/x/sys/windows"

// connRefusedOS is how Windows says a connection was refused: package net
// returns WSAECONNREFUSED there, which syscall.ECONNREFUSED does not match.
var connRefusedOS error = winsys.WSAECONNREFUSED
