// Command etcd is the etcd server at the release go.mod pins: the same
// entry point as the upstream binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
