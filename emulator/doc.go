// Package emulator is a local Azure Batch account: an HTTP server that
// speaks the Batch data-plane REST API, api-version 2025-06-01, and runs
// tasks as local processes. It is what `bmc emulator` serves, how bmc's
// Batch backend is tested end to end, and how anyone can try a Batch
// client with no subscription.
//
// It follows the official REST spec (BatchService.json), not any one
// client: wire names, enum spellings (read in any case, written as the
// spec spells them), required properties, the defaults Batch reports
// (constraints, user identity, slots, scheduling policy), RFC 3339 times
// with seven fractional digits, ISO 8601 durations with .NET's
// TimeSpan.MaxValue for "unlimited", and the Batch error body (code,
// message with request id and time, values) with Batch's status codes.
// Every request must carry a valid Shared Key signature, signed over the
// one canonical string Batch checks, or a bearer token of the emulated
// pool identity (Options.PoolIdentity: tasks on a pool get
// IDENTITY_ENDPOINT and IDENTITY_HEADER, and the tokens served there reach
// the jobs of that pool only), and api-version 2025-06-01. Task
// authentication tokens (authenticationTokenSettings), which Batch retired
// in September 2024, are issued only with Options.TaskTokens.
//
// What it serves:
//
//   - pools: add, get, exists, list, delete, resize, stop resize, enable,
//     disable and evaluate autoscale (formulas are recorded, not
//     evaluated);
//   - jobs: add (with a pool id or an auto pool), get, list, patch,
//     update, disable, enable, terminate, delete, task counts;
//   - tasks: add, add collection, get, list ($filter, $select,
//     maxresults, odata.nextLink), update, terminate, reactivate, delete;
//   - task files: get (with ocp-range), properties (HEAD), list, delete.
//
// How tasks run. A pool has targetDedicatedNodes + targetLowPriorityNodes
// emulated nodes of taskSlotsPerNode slots (capped by Options.Nodes and
// Options.SlotsPerNode); a task takes requiredSlots on one node, higher
// priority jobs first, spread or packed as the pool's policy says. A
// task's command line is split into words (no shell, as on Batch) and run
// with procrun, the process machinery the local backend uses, in
// <node>/workitems/<job>/job-1/<task>/wd with stdout.txt and stderr.txt
// beside it and the AZ_BATCH_* variables of a Linux node. Resource files
// come from httpUrl, storageContainerUrl + blobPrefix or
// autoStorageContainerName through the shared blob staging package, with
// a SAS from the URL or, for identityReference, the storage account given
// as the emulated pool identity; output files go back the same way, after
// every attempt, by uploadCondition and Batch's filePattern rules.
// Dependencies (taskIds, taskIdRanges), exit conditions
// (dependencyAction, jobAction with performexitoptionsjobaction), retries,
// wall-clock limits, job manager tasks, onAllTasksComplete and job
// constraints behave as the spec describes; a parent that fails blocks
// its dependents for ever, as on Batch.
//
// Options.Instant completes every task at once with exit code 0 and runs
// nothing: for control-plane tests. A job manager task completes at once
// too, so with killJobOnCompletion (the default) its job ends as soon as
// it starts.
//
// Persistence (Options.DataDir) keeps pools, jobs and tasks in a journal
// and the nodes' directories beside it; on restart, tasks that were running
// are requeued, as Batch requeues the tasks of a failed node. Faults
// (Options.Faults) inject throttling, server errors, dropped connections
// and partial add-collection failures, deterministically for a seed.
//
// What it does not do: containers (a task's containerSettings must go
// with its pool's containerConfiguration, as on Batch, which fails a task
// on the node otherwise; the command then runs on the host), job preparation and release tasks and pool
// start tasks (recorded, not run), multi-instance tasks (run as one
// instance), user identities (everything runs as the emulator's user),
// uploadHeaders, task statistics ($expand=stats), nodes, job schedules and
// certificates. It listens on loopback by default: whoever holds the
// account key can run commands on the machine.
//
// The package owns the emulator and nothing else: it is not a Batch
// client, and it does not print; it logs through the slog.Logger it is
// given.
package emulator
