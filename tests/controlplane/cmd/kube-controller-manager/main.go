// Command kube-controller-manager runs the upstream controller manager unchanged, so
// that Deployments, StatefulSets and DaemonSets really roll out in tests that ask for it.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
