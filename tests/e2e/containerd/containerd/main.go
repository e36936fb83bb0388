// containerd v2 for the e2e cluster (tests/e2e): the upstream daemon's main, built from the Go module
// proxy because Debian's containerd (1.6) has no CDI support. Built and cached by tests/e2e/run.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	if err := command.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
