package main

import (
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/emulator"
	"github.com/spf13/cobra"
)

type emulatorOptions struct {
	listen, account, key, data, storage, fault, logLevel string
	poolIdentity                                         string
	packages                                             []string
	nodes, slotsPerNode                                  int
	instant                                              bool
}

func newEmulatorCmd() *cobra.Command {
	var o emulatorOptions
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Serve a local Azure Batch account: the Batch REST API, tasks run as local processes",
		Long: `Serve a local Azure Batch account on loopback. It speaks the Batch data-plane
REST API, api-version ` + emulator.APIVersion + ` (pools, jobs, tasks, task counts, task files),
checks every request's Shared Key signature, and runs tasks as local processes,
staging resourceFiles and outputFiles through a blob endpoint such as Azurite.

The first three lines on stdout point a client at it:

  AZURE_BATCH_ENDPOINT=http://127.0.0.1:PORT
  AZURE_BATCH_ACCOUNT=emulator
  AZURE_BATCH_ACCESS_KEY=...

It serves until interrupted. With --data the pools, jobs and tasks survive a
restart (tasks that were running are requeued, as after a node failure), and
so does a generated key. The storage account given with
--storage-connection-string (default: $AZURE_STORAGE_CONNECTION_STRING) is
what the pool's managed identity (identityReference) and
autoStorageContainerName reach; other storage URLs need a SAS.

--fault injects failures for testing clients, deterministically for a seed:
throttle=P (429/503 with Retry-After), 5xx=P (500), reset=P (dropped
connection, before or after the request is applied), partial=P (an
add-collection item fails with servererror), seed=N, retry-after=SECONDS.`,
		Example: `  bmc emulator > batch.env &            # then: export $(head -3 batch.env)
  bmc emulator --data .bmc/emulator --package aligner@2.1.0=./aligner
  bmc emulator --instant --nodes 4 --slots-per-node 8
  bmc emulator --pool-identity /subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc
  bmc emulator --fault throttle=0.1,5xx=0.05,reset=0.02,partial=0.1,seed=7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEmulator(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "`address` to listen on (port 0: any free port)")
	f.StringVar(&o.account, "account", "emulator", "Batch account `name` requests are signed for")
	f.StringVar(&o.key, "key", "", "account key, `base64` (default: random, kept in --data)")
	f.StringVar(&o.data, "data", "", "keep state and the nodes' files in `dir` (default: a temporary directory, removed on exit)")
	f.StringVar(&o.storage, "storage-connection-string", os.Getenv("AZURE_STORAGE_CONNECTION_STRING"), "storage account of the pool identity and auto-storage (default $AZURE_STORAGE_CONNECTION_STRING)")
	f.StringArrayVar(&o.packages, "package", nil, "an application package of the account: `name[@version]=dir` (repeatable)")
	f.IntVar(&o.nodes, "nodes", 0, "cap every pool at `N` nodes (0: as the pool asks; autoscale pools get N, at least 1)")
	f.IntVar(&o.slotsPerNode, "slots-per-node", 0, "cap every node at `M` task slots (0: the pool's taskSlotsPerNode)")
	f.StringVar(&o.fault, "fault", "", "inject faults: `spec` such as throttle=0.1,5xx=0.05,reset=0.02,partial=0.1,seed=7")
	f.StringVar(&o.poolIdentity, "pool-identity", "", "give every pool the user-assigned managed identity with this ARM `id`, whose tokens its tasks get (IDENTITY_ENDPOINT) and which reaches its jobs, so that the finalize step can run on the pool (bmc run --pool-identity with the same id)")
	f.BoolVar(&o.instant, "instant", false, "complete every task at once with exit code 0, running nothing")
	f.StringVar(&o.logLevel, "log-level", "info", "log `level` on stderr: debug, info, warn or error")
	return cmd
}

func runEmulator(cmd *cobra.Command, o *emulatorOptions) error {
	opts := emulator.Options{
		Account: o.account, Key: o.key, StorageConnectionString: o.storage,
		Nodes: o.nodes, SlotsPerNode: o.slotsPerNode, Instant: o.instant, PoolIdentity: o.poolIdentity,
	}
	if o.nodes < 0 || o.slotsPerNode < 0 {
		return usagef("--nodes and --slots-per-node may not be negative")
	}
	if o.key != "" {
		if _, err := base64.StdEncoding.DecodeString(o.key); err != nil {
			return usagef("--key: not base64: %v", err)
		}
	}
	if o.data != "" {
		abs, err := filepath.Abs(o.data)
		if err != nil {
			return err
		}
		opts.DataDir = abs
	}
	if o.fault != "" {
		f, err := emulator.ParseFaults(o.fault)
		if err != nil {
			return usagef("--fault: %v", err)
		}
		opts.Faults = f
	}
	pkgs, err := parsePackages(o.packages)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		opts.Packages = append(opts.Packages, emulator.Package{Name: p.Name, Version: p.Version, Dir: p.Dir})
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usagef("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

	// Ctrl-C cancels the context: the emulator stops serving, stops its
	// tasks and returns nil.
	return emulator.ListenAndServe(cmd.Context(), o.listen, opts, cmd.OutOrStdout())
}
