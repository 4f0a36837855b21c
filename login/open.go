package login

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// openBrowser opens u in the person's browser: $BROWSER (a list separated
// by colons, "%s" standing for the URL), else the platform's opener. It
// starts the program and does not wait for it.
func openBrowser(ctx context.Context, u string) error {
	var cmds [][]string
	if b := os.Getenv("BROWSER"); b != "" {
		for _, c := range strings.Split(b, string(os.PathListSeparator)) {
			f := strings.Fields(c)
			if len(f) == 0 {
				continue
			}
			arg := false
			for i := range f {
				if strings.Contains(f[i], "%s") {
					f[i], arg = strings.ReplaceAll(f[i], "%s", u), true
				}
			}
			if !arg {
				f = append(f, u)
			}
			cmds = append(cmds, f)
		}
	}
	switch runtime.GOOS {
	case "darwin":
		cmds = append(cmds, []string{"open", u})
	case "windows":
		cmds = append(cmds, []string{"rundll32", "url.dll,FileProtocolHandler", u})
	default:
		cmds = append(cmds, []string{"xdg-open", u})
	}
	err := errors.New("no browser found")
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		if err = cmd.Start(); err == nil {
			go cmd.Wait() // reap it; the browser outlives the sign-in
			return nil
		}
	}
	return err
}
