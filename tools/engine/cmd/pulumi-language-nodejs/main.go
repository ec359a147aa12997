// Command pulumi-language-nodejs is a minimal Node.js language host for the
// Pulumi engine, written for this project because the upstream host's Go
// module (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3)
// is not served by the module proxy these machines can reach.
//
// It speaks the LanguageRuntime gRPC protocol of github.com/pulumi/pulumi/sdk/v3
// and delegates all program semantics to the @pulumi/pulumi npm package that the
// project has installed: programs run through `@pulumi/pulumi/cmd/run`, policy
// packs through `@pulumi/pulumi/cmd/run-policy-pack`. It supports what the
// engine needs for `up`, `preview`, `destroy`, `refresh` and policy packs; it
// does not install dependencies, generate code or create projects.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() {
	engineAddress := parseEngineAddress(os.Args[1:])

	nodeBin, err := exec.LookPath("node")
	if err != nil {
		fail(fmt.Errorf("could not find node on the PATH: %w", err))
	}

	host := newLanguageHost(nodeBin, engineAddress)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fail(fmt.Errorf("could not start the language host gRPC server: %w", err))
	}

	// The engine reads the port from the first line of our stdout.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fail(fmt.Errorf("language host gRPC server stopped: %w", err))
	}
}

// parseEngineAddress returns the engine's address, the last positional
// argument. Flags (`-name=value` or `-name value` style, which older and newer
// engines pass, such as -tracing or -root) are accepted and ignored: the
// engine also sends the directories in Handshake and in each request.
func parseEngineAddress(args []string) string {
	address := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if strings.HasPrefix(arg, "-") {
			if !strings.Contains(arg, "=") && i+1 < len(args) && flagTakesValue(arg) {
				i++
			}
			continue
		}
		address = arg
	}
	return address
}

// flagTakesValue lists the value-taking flags the engine may pass without `=`.
func flagTakesValue(flag string) bool {
	switch strings.TrimLeft(flag, "-") {
	case "tracing", "root", "binary", "nodeargs", "tsconfig", "packagemanager":
		return true
	}
	return false
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pulumi-language-nodejs:", err)
	os.Exit(1)
}
