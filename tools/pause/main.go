// Command pause is the local node's sandbox ("pause") process: it holds a pod's namespaces
// open, reaps the zombies of processes that share its PID namespace, and exits on SIGINT or
// SIGTERM, as Kubernetes' own pause does (build/pause/linux/pause.c). No registry is
// reachable from the machines the local stack runs on, so the sandbox image is built from
// this source with the Go toolchain and packed by `recon dev images`.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("pause (recon-operator local node)\n")
		return
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
