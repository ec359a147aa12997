package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// exitCodeReportedToUser is the exit code @pulumi/pulumi's runner uses after it
// has already shown the user an actionable message: the engine must only bail.
const exitCodeReportedToUser = 32

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	nodeBin string

	mu            sync.Mutex
	engineAddress string
}

func newLanguageHost(nodeBin, engineAddress string) *languageHost {
	return &languageHost{nodeBin: nodeBin, engineAddress: engineAddress}
}

func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPackages reports no packages to pre-install: this host never
// downloads plugins; the engine loads each provider from PATH when the program
// first registers one of its resources.
func (h *languageHost) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// Run executes the program with @pulumi/pulumi's runner, which connects back
// to the engine's resource monitor itself.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	program, err := programFromRequest(req)
	if err != nil {
		return nil, err
	}
	runner, err := resolveNodeModule(h.nodeBin, program.dir, "@pulumi/pulumi/cmd/run")
	if err != nil {
		return nil, err
	}
	env, err := runEnvironment(req, program.options)
	if err != nil {
		return nil, err
	}

	args := append(nodeArgs(program.options), runner)
	args = append(args, runnerFlags(req, h.engine(), program.rootDir)...)
	args = append(args, program.entry)
	args = append(args, req.GetArgs()...)

	cmd := exec.CommandContext(ctx, h.nodeBin, args...)
	cmd.Dir = program.dir
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr

	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitCodeReportedToUser:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run node: %v", err)}, nil
	}
}

// runnerFlags builds the command line that @pulumi/pulumi/cmd/run parses.
func runnerFlags(req *pulumirpc.RunRequest, engineAddress, rootDir string) []string {
	var flags []string
	add := func(name, value string) {
		if value != "" {
			flags = append(flags, "--"+name, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", engineAddress)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("root-directory", rootDir)
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	if req.GetParallel() > 0 {
		add("parallel", strconv.Itoa(int(req.GetParallel())))
	}
	if req.GetDryRun() {
		flags = append(flags, "--dry-run")
	}
	return flags
}

// RunPlugin runs a plugin written in Node.js (a policy pack, or a provider
// or component served from source) and streams its output to the engine,
// which reads the plugin's gRPC port from the first line of stdout.
func (h *languageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, stream pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	info := req.GetInfo()
	if info == nil || info.GetProgramDirectory() == "" {
		return errors.New("RunPlugin: the request names no plugin directory (info.program_directory)")
	}
	dir := info.GetProgramDirectory()

	var runnerModule string
	var args []string
	switch req.GetKind() {
	case "analyzer":
		runnerModule = "@pulumi/pulumi/cmd/run-policy-pack"
		// run-policy-pack expects: <engine-address> <program>
		args = append(append(args, req.GetArgs()...), dir)
	default:
		runnerModule = "@pulumi/pulumi/cmd/run-plugin"
		// run-plugin expects: <program> [plugin args...]
		args = append(append(args, dir), req.GetArgs()...)
	}
	runner, err := resolveNodeModule(h.nodeBin, dir, runnerModule)
	if err != nil {
		return err
	}

	options := info.GetOptions().AsMap()
	cmd := exec.CommandContext(stream.Context(), h.nodeBin, append(append(nodeArgs(options), runner), args...)...)
	// Plugins run in their own folder: a policy pack reads its package.json from the working directory.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), req.GetEnv()...)
	return streamProcess(cmd, stream)
}

// resolveNodeModule finds a module the way Node would from dir, so the
// runner comes from the same @pulumi/pulumi copy the program loads.
func resolveNodeModule(nodeBin, dir, module string) (string, error) {
	script := "console.log(require.resolve(process.argv[1], { paths: [process.argv[2]] }))"
	out, err := exec.Command(nodeBin, "-e", script, module, dir).Output()
	if err != nil {
		return "", fmt.Errorf(
			"cannot find %s from %s: is @pulumi/pulumi installed (npm ci)? %w", module, dir, err)
	}
	return filepath.Clean(strings.TrimSpace(string(out))), nil
}
