//go:build !unix && !windows

package store

import "os"

// On systems without flock the locks exclude holders in this process only;
// processes sharing a store there may both refresh a token, and concurrent
// Saves from two processes may lose one update.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}

// syncDir is a no-op: directories cannot be opened for fsync here, and
// rename is durable once the file itself was synced.
func syncDir(string) error { return nil }

// crossProcessLocking tells whether lockFile excludes other processes.
const crossProcessLocking = false
