package azurebatch

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "PT0S"},
		{90 * time.Minute, "PT1H30M"},
		{time.Hour, "PT1H"},
		{36 * time.Hour, "PT36H"},
		{5 * time.Minute, "PT5M"},
		{1500 * time.Millisecond, "PT1.5S"},
		{time.Nanosecond, "PT0.000000001S"},
		{2*time.Hour + 3*time.Second, "PT2H3S"},
		{-5 * time.Minute, "-PT5M"},
		{Unbounded, "P10675199DT2H48M5.4775807S"},
	}
	for _, c := range cases {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		s    string
		want time.Duration
	}{
		{"PT0S", 0},
		{"PT1H30M", 90 * time.Minute},
		{"P1D", 24 * time.Hour},
		{"P7DT12H", 7*24*time.Hour + 12*time.Hour},
		{"P2W", 14 * 24 * time.Hour},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT1,25S", 1250 * time.Millisecond},
		{"PT.5S", 500 * time.Millisecond},
		{"PT1.0000000001S", time.Second}, // finer than a nanosecond: dropped
		{"-PT5M", -5 * time.Minute},
		{"P10675199DT2H48M5.4775807S", Unbounded}, // .NET TimeSpan.MaxValue
		{"P106751DT23H47M16.854775807S", time.Duration(1<<63 - 1)},
		{"P106751DT23H47M17S", Unbounded}, // one second past Go's range
		{"P99999999999999999999D", Unbounded},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.s)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.s, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1H", "PT1H30", "P1Y", "P1M", "PT1D", "PTH", "PT1.2.3S", "P1DT", "PT1HT1M", "PT-1S", "PT1X"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, 999 * time.Millisecond, 90 * time.Minute, 180 * 24 * time.Hour, -time.Second, time.Duration(1<<63 - 1), -time.Duration(1<<63 - 1)} {
		s := FormatDuration(d)
		got, err := ParseDuration(s)
		if err != nil || got != d {
			t.Errorf("ParseDuration(FormatDuration(%d) = %q) = %d, %v", d, s, got, err)
		}
	}
}

// TestEnumsMatchSpec: each typed enum's constants are exactly the spec's
// values, spelled as the spec spells them.
func TestEnumsMatchSpec(t *testing.T) {
	s := loadSpec(t)
	strs := func(vs ...any) []string {
		var out []string
		for _, v := range vs {
			out = append(out, reflect.ValueOf(v).String())
		}
		return out
	}
	cases := map[string][]string{
		"BatchPoolState":              strs(PoolStateActive, PoolStateDeleting),
		"AllocationState":             strs(AllocationStateSteady, AllocationStateResizing, AllocationStateStopping),
		"BatchJobState":               strs(JobStateActive, JobStateDisabling, JobStateDisabled, JobStateEnabling, JobStateTerminating, JobStateCompleted, JobStateDeleting),
		"BatchTaskState":              strs(TaskStateActive, TaskStatePreparing, TaskStateRunning, TaskStateCompleted),
		"BatchAllTasksCompleteMode":   strs(AllTasksCompleteNoAction, AllTasksCompleteTerminateJob),
		"BatchTaskFailureMode":        strs(TaskFailureNoAction, TaskFailurePerformExitOptionsJobAction),
		"BatchTaskAddStatus":          strs(TaskAddSuccess, TaskAddClientError, TaskAddServerError),
		"BatchTaskExecutionResult":    strs(TaskResultSuccess, TaskResultFailure),
		"BatchErrorSourceCategory":    strs(ErrorCategoryUser, ErrorCategoryServer),
		"ContainerType":               strs(ContainerTypeDockerCompatible, ContainerTypeCRICompatible),
		"ContainerWorkingDirectory":   strs(ContainerWorkingDirectoryTask, ContainerWorkingDirectoryImage),
		"ContainerHostDataPath":       strs(ContainerHostShared, ContainerHostStartup, ContainerHostVfsMounts, ContainerHostTask, ContainerHostJobPrep, ContainerHostApplications),
		"AutoUserScope":               strs(AutoUserScopeTask, AutoUserScopePool),
		"ElevationLevel":              strs(ElevationNonAdmin, ElevationAdmin),
		"OutputFileUploadCondition":   strs(UploadOnTaskSuccess, UploadOnTaskFailure, UploadOnTaskCompletion),
		"BatchJobActionKind":          strs(JobActionNone, JobActionDisable, JobActionTerminate),
		"DependencyAction":            strs(DependencySatisfy, DependencyBlock),
		"BatchNodeFillType":           strs(NodeFillSpread, NodeFillPack),
		"BatchAccessScope":            strs(AccessScopeJob),
		"BatchPoolIdentityType":       strs(PoolIdentityUserAssigned, PoolIdentityNone),
		"BatchNodeDeallocationOption": strs(DeallocationRequeue, DeallocationTerminate, DeallocationTaskCompletion, DeallocationRetainedData),
	}
	for def, got := range cases {
		d := s.Definition(def)
		ok := d != nil
		if !ok {
			t.Errorf("%s: not in the spec", def)
			continue
		}
		want := strs(d.Enum...)
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s constants differ from the spec (-spec +code):\n%s", def, diff)
		}
	}
	// jobDefaultOrder is declared inline.
	inline := s.Definition("BatchTaskSchedulingPolicy").Properties["jobDefaultOrder"].Enum
	if diff := cmp.Diff(strs(inline...), strs(JobDefaultOrderNone, JobDefaultOrderCreationTime)); diff != "" {
		t.Errorf("jobDefaultOrder constants differ from the spec:\n%s", diff)
	}
}

// Maximal request bodies: every field set, so that every wire name the
// client can send is checked against the spec.
func fullTask(id string) BatchTaskCreateOptions {
	ident := &BatchNodeIdentityReference{ResourceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"}
	return BatchTaskCreateOptions{
		ID:          id,
		DisplayName: "align sample " + id,
		ExitConditions: &ExitConditions{
			ExitCodes:          []ExitCodeMapping{{Code: 0, ExitOptions: ExitOptions{JobAction: JobActionNone, DependencyAction: DependencySatisfy}}},
			ExitCodeRanges:     []ExitCodeRangeMapping{{Start: 1, End: 255, ExitOptions: ExitOptions{JobAction: JobActionNone, DependencyAction: DependencyBlock}}},
			PreProcessingError: &ExitOptions{JobAction: JobActionNone, DependencyAction: DependencyBlock},
			FileUploadError:    &ExitOptions{JobAction: JobActionNone, DependencyAction: DependencyBlock},
			Default:            &ExitOptions{JobAction: JobActionNone, DependencyAction: DependencyBlock},
		},
		CommandLine: CommandLine([]string{"aligner", "--threads", "4", "in.fq"}),
		ContainerSettings: &BatchTaskContainerSettings{
			ContainerRunOptions: "--rm",
			ImageName:           "myacr.azurecr.io/aligner:2.1",
			Registry:            &ContainerRegistryReference{Username: "u", Password: "p", RegistryServer: "https://myacr.azurecr.io", IdentityReference: ident},
			WorkingDirectory:    ContainerWorkingDirectoryTask,
			ContainerHostBatchBindMounts: []ContainerHostBatchBindMountEntry{
				{Source: ContainerHostShared, IsReadOnly: Ptr(true)},
			},
		},
		ResourceFiles: []ResourceFile{
			{HTTPURL: "https://acct.blob.core.windows.net/raw/s1.fq", FilePath: "in.fq", FileMode: "0644", IdentityReference: ident},
			{StorageContainerURL: "https://acct.blob.core.windows.net/refs", BlobPrefix: "run-1/", FilePath: "refs"},
			{AutoStorageContainerName: "refs"},
		},
		OutputFiles: []OutputFile{{
			FilePattern: "out/**/*.bam",
			Destination: OutputFileDestination{Container: &OutputFileBlobContainerDestination{
				Path: "run-1/s1", ContainerURL: "https://acct.blob.core.windows.net/results", IdentityReference: ident,
				UploadHeaders: []OutputFileUploadHeader{{Name: "x-ms-blob-content-type", Value: "application/octet-stream"}},
			}},
			UploadOptions: OutputFileUploadConfig{UploadCondition: UploadOnTaskSuccess},
		}},
		EnvironmentSettings:          []EnvironmentSetting{{Name: "LC_ALL", Value: "C"}, {Name: "EMPTY", Value: ""}},
		AffinityInfo:                 &BatchAffinityInfo{AffinityID: "node-1"},
		Constraints:                  &BatchTaskConstraints{MaxWallClockTime: FormatDuration(2 * time.Hour), RetentionTime: FormatDuration(7 * 24 * time.Hour), MaxTaskRetryCount: Ptr[int32](2)},
		RequiredSlots:                Ptr[int32](1),
		UserIdentity:                 &UserIdentity{AutoUser: &AutoUserSpecification{Scope: AutoUserScopeTask, ElevationLevel: ElevationNonAdmin}},
		DependsOn:                    &BatchTaskDependencies{TaskIDs: []string{"fetch-ref"}, TaskIDRanges: []BatchTaskIDRange{{Start: 1, End: 10}}},
		ApplicationPackageReferences: []BatchApplicationPackageReference{{ApplicationID: "aligner", Version: "2.1.0"}},
		AuthenticationTokenSettings:  &AuthenticationTokenSettings{Access: []BatchAccessScope{AccessScopeJob}},
	}
}

func fullPool() BatchPoolCreateOptions {
	task := fullTask("start")
	return BatchPoolCreateOptions{
		ID:          "genome-pool",
		DisplayName: "genome pool",
		VMSize:      "Standard_D4s_v5",
		VirtualMachineConfiguration: &VirtualMachineConfiguration{
			ImageReference: BatchVMImageReference{
				Publisher: "canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest",
				VirtualMachineImageID:   "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/g/images/i/versions/1",
				SharedGalleryImageID:    "sg",
				CommunityGalleryImageID: "cg",
			},
			NodeAgentSKUID: "batch.node.ubuntu 24.04",
			LicenseType:    "Windows_Server",
			ContainerConfiguration: &BatchContainerConfiguration{
				Type:                ContainerTypeDockerCompatible,
				ContainerImageNames: []string{"myacr.azurecr.io/aligner:2.1"},
				ContainerRegistries: []ContainerRegistryReference{*task.ContainerSettings.Registry},
			},
		},
		ResizeTimeout:                FormatDuration(15 * time.Minute),
		TargetDedicatedNodes:         Ptr[int32](0),
		TargetLowPriorityNodes:       Ptr[int32](4),
		EnableAutoScale:              Ptr(false),
		AutoScaleFormula:             "$TargetDedicatedNodes = 1;",
		AutoScaleEvaluationInterval:  FormatDuration(5 * time.Minute),
		EnableInterNodeCommunication: Ptr(false),
		StartTask: &BatchStartTask{
			CommandLine:         ScriptCommandLine("apt-get install -y samtools", "start"),
			ContainerSettings:   task.ContainerSettings,
			ResourceFiles:       task.ResourceFiles,
			EnvironmentSettings: []EnvironmentSetting{{Name: "DEBIAN_FRONTEND", Value: "noninteractive"}},
			UserIdentity:        &UserIdentity{AutoUser: &AutoUserSpecification{Scope: AutoUserScopePool, ElevationLevel: ElevationAdmin}},
			MaxTaskRetryCount:   Ptr[int32](1),
			WaitForSuccess:      Ptr(true),
		},
		ApplicationPackageReferences: []BatchApplicationPackageReference{{ApplicationID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a/applications/aligner", Version: "2.1.0"}},
		TaskSlotsPerNode:             Ptr[int32](4),
		TaskSchedulingPolicy:         &BatchTaskSchedulingPolicy{NodeFillType: NodeFillPack, JobDefaultOrder: JobDefaultOrderCreationTime},
		Metadata:                     []BatchMetadataItem{{Name: "team", Value: "genomics"}},
	}
}

func fullJob() BatchJobCreateOptions {
	task := fullTask("finalize")
	return BatchJobCreateOptions{
		ID:                   "genome-align-run-1",
		DisplayName:          "genome-align run 1",
		UsesTaskDependencies: Ptr(true),
		Priority:             Ptr[int32](0),
		AllowTaskPreemption:  Ptr(false),
		MaxParallelTasks:     Ptr[int32](-1),
		Constraints:          &BatchJobConstraints{MaxWallClockTime: FormatDuration(24 * time.Hour), MaxTaskRetryCount: Ptr[int32](0)},
		JobManagerTask: &BatchJobManagerTask{
			ID: "bmc-finalize", DisplayName: "finalize", CommandLine: CommandLine([]string{"bmc", "finalize", "--watch"}),
			ContainerSettings:            task.ContainerSettings,
			ResourceFiles:                task.ResourceFiles,
			OutputFiles:                  task.OutputFiles,
			EnvironmentSettings:          []EnvironmentSetting{{Name: "BMC_RUN", Value: "run-1"}},
			Constraints:                  task.Constraints,
			RequiredSlots:                Ptr[int32](1),
			KillJobOnCompletion:          Ptr(false),
			UserIdentity:                 task.UserIdentity,
			RunExclusive:                 Ptr(false),
			ApplicationPackageReferences: task.ApplicationPackageReferences,
			AuthenticationTokenSettings:  task.AuthenticationTokenSettings,
			AllowLowPriorityNode:         Ptr(true),
		},
		CommonEnvironmentSettings: []EnvironmentSetting{{Name: "LC_ALL", Value: "C"}},
		PoolInfo:                  BatchPoolInfo{PoolID: "genome-pool"},
		OnAllTasksComplete:        AllTasksCompleteNoAction,
		OnTaskFailure:             TaskFailureNoAction,
		Metadata:                  []BatchMetadataItem{{Name: "team", Value: "genomics"}},
	}
}

func fullJobUpdate() BatchJobUpdateOptions {
	return BatchJobUpdateOptions{
		Priority:            Ptr[int32](10),
		AllowTaskPreemption: Ptr(true),
		MaxParallelTasks:    Ptr[int32](8),
		Constraints:         &BatchJobConstraints{MaxWallClockTime: "PT1H", MaxTaskRetryCount: Ptr[int32](1)},
		OnAllTasksComplete:  AllTasksCompleteTerminateJob,
		Metadata:            []BatchMetadataItem{{Name: "status", Value: "submitted"}},
	}
}

func fullResize() BatchPoolResizeOptions {
	return BatchPoolResizeOptions{
		TargetDedicatedNodes:   Ptr[int32](2),
		TargetLowPriorityNodes: Ptr[int32](0),
		ResizeTimeout:          "PT10M",
		NodeDeallocationOption: DeallocationTaskCompletion,
	}
}

// assertAllSet fails for any zero field in v, recursively (first element
// of slices), so the maximal fixtures stay maximal as fields are added.
// Read-only fields are named in skip.
func assertAllSet(t *testing.T, path string, v reflect.Value, skip map[string]bool) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is not set in the maximal fixture", path)
			return
		}
		assertAllSet(t, path, v.Elem(), skip)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			p := path + "." + f.Name
			if skip[f.Name] || f.Type == reflect.TypeFor[*int32]() || f.Type == reflect.TypeFor[*bool]() {
				// Pointers to scalars may hold zero on purpose.
				if !skip[f.Name] && v.Field(i).IsNil() {
					t.Errorf("%s is not set in the maximal fixture", p)
				}
				continue
			}
			if f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Pointer {
				if v.Field(i).IsZero() {
					t.Errorf("%s is not set in the maximal fixture", p)
					continue
				}
			}
			assertAllSet(t, p, v.Field(i), skip)
		}
	case reflect.Slice:
		if v.Len() > 0 {
			assertAllSet(t, path+"[0]", v.Index(0), skip)
		}
	}
}

func TestRequestBodiesMatchSpec(t *testing.T) {
	s := loadSpec(t)
	// Read-only fields, and fields of which only one of a set of
	// alternatives may be set (ResourceFile's three sources, a user's name
	// or auto user), shown set elsewhere in the fixtures.
	alternatives := map[string]bool{"ExactVersion": true, "AutoStorageContainerName": true, "StorageContainerURL": true, "BlobPrefix": true, "Username": true}
	cases := []struct {
		def string
		v   any
	}{
		{"BatchTaskCreateOptions", fullTask("align-s1")},
		{"BatchTaskGroup", BatchTaskGroup{Value: []BatchTaskCreateOptions{fullTask("a"), fullTask("b")}}},
		{"BatchPoolCreateOptions", fullPool()},
		{"BatchJobCreateOptions", fullJob()},
		{"BatchJobUpdateOptions", fullJobUpdate()},
		{"BatchJobTerminateOptions", BatchJobTerminateOptions{TerminateReason: "UserTerminate"}},
		{"BatchPoolResizeOptions", fullResize()},
	}
	for _, c := range cases {
		t.Run(c.def, func(t *testing.T) {
			assertAllSet(t, c.def, reflect.ValueOf(c.v), alternatives)
			b, err := marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			s.mustValidate(t, c.def, b, true)
		})
	}

	// Zero values of the minimal bodies carry only their required fields.
	b, _ := marshal(BatchTaskCreateOptions{ID: "t", CommandLine: "true"})
	if string(b) != `{"id":"t","commandLine":"true"}` {
		t.Errorf("minimal task = %s", b)
	}
	s.mustValidate(t, "BatchJobCreateOptions", mustMarshal(t, BatchJobCreateOptions{ID: "j", PoolInfo: BatchPoolInfo{PoolID: "p"}}), true)
	s.mustValidate(t, "BatchPoolCreateOptions", mustMarshal(t, BatchPoolCreateOptions{ID: "p", VMSize: "Standard_D2s_v5"}), true)
}

// TestResponseTypesMatchSpec: what the response types marshal (as an
// emulator built on them would answer) is valid per the spec, and the
// spec's own example shapes decode into them.
func TestResponseTypesMatchSpec(t *testing.T) {
	s := loadSpec(t)
	now := time.Date(2025, 11, 21, 22, 43, 31, 473347600, time.UTC)
	task := sampleTask("align-s1", TaskStateCompleted, now)
	cases := []struct {
		def string
		v   any
	}{
		{"BatchTask", task},
		{"BatchTaskListResult", BatchTaskListResult{Value: []BatchTask{task}, NextLink: "https://acct.westeurope.batch.azure.com/jobs/j/tasks?$skiptoken=x"}},
		{"BatchTaskCountsResult", BatchTaskCountsResult{TaskCounts: BatchTaskCounts{Active: 1}, TaskSlotCounts: BatchTaskSlotCounts{Active: 1}}},
		{"BatchCreateTaskCollectionResult", BatchCreateTaskCollectionResult{Value: []BatchTaskCreateResult{
			{Status: TaskAddSuccess, TaskID: "a", ETag: "0x8D3D623CD661246", LastModified: now, Location: "https://acct.westeurope.batch.azure.com/jobs/j/tasks/a"},
			{Status: TaskAddClientError, TaskID: "b", Error: &BatchError{Code: CodeTaskExists, Message: &BatchErrorMessage{Lang: "en-US", Value: "The specified task already exists."}}},
		}}},
		{"BatchJob", sampleJob("j", now)},
		{"BatchError", BatchError{Code: "JobNotFound", Message: &BatchErrorMessage{Lang: "en-US", Value: "The specified job does not exist."}, Values: []BatchErrorDetail{{Key: "k", Value: "v"}}}},
	}
	for _, c := range cases {
		t.Run(c.def, func(t *testing.T) {
			b := mustMarshal(t, c.v)
			s.mustValidate(t, c.def, b, false)
			// And back: nothing is lost in a round trip.
			back := reflect.New(reflect.TypeOf(c.v))
			if err := json.Unmarshal(b, back.Interface()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.v, back.Elem().Interface()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	// The 7-digit fractions Batch writes decode.
	var r BatchTaskCreateResult
	if err := json.Unmarshal([]byte(`{"status":"success","taskId":"a","lastModified":"2025-11-21T22:43:31.4733476Z"}`), &r); err != nil || !r.LastModified.Equal(now) {
		t.Errorf("decoding a 7-digit time: %v, %v", r.LastModified, err)
	}
	// The unbounded constraints Batch fills in read as Unbounded.
	var tc BatchTask
	if err := json.Unmarshal([]byte(`{"id":"t","constraints":{"maxWallClockTime":"P10675199DT2H48M5.4775807S","retentionTime":"P7D","maxTaskRetryCount":0}}`), &tc); err != nil {
		t.Fatal(err)
	}
	if d, err := ParseDuration(tc.Constraints.MaxWallClockTime); err != nil || d != Unbounded {
		t.Errorf("maxWallClockTime = %v, %v; want Unbounded", d, err)
	}
}

func sampleTask(id string, state BatchTaskState, now time.Time) BatchTask {
	t := BatchTask{
		ID: id, URL: "https://acct.westeurope.batch.azure.com/jobs/j/tasks/" + id, ETag: "0x8D3D623CD661246",
		LastModified: now, CreationTime: now, State: state, StateTransitionTime: now,
		CommandLine: "/bin/bash -c true", RequiredSlots: 1,
		Constraints:   &BatchTaskConstraints{MaxWallClockTime: timeSpanMax, RetentionTime: "P7D", MaxTaskRetryCount: Ptr[int32](0)},
		UserIdentity:  &UserIdentity{AutoUser: &AutoUserSpecification{Scope: AutoUserScopeTask, ElevationLevel: ElevationNonAdmin}},
		ExecutionInfo: &BatchTaskExecutionInfo{RetryCount: 0, RequeueCount: 0},
	}
	if state == TaskStateCompleted {
		t.PreviousState, t.PreviousStateTransitionTime = TaskStateRunning, now
		t.ExecutionInfo = &BatchTaskExecutionInfo{
			StartTime: now, EndTime: now, ExitCode: Ptr[int32](1), RetryCount: 2, Result: TaskResultFailure,
			FailureInfo: &BatchTaskFailureInfo{Category: ErrorCategoryUser, Code: "FailureExitCode", Message: "The task exited with an exit code representing a failure", Details: []NameValuePair{{Name: "Message", Value: "exit 1"}}},
		}
		t.NodeInfo = &BatchNodeInfo{AffinityID: "a", NodeURL: "https://acct.westeurope.batch.azure.com/pools/p/nodes/n", PoolID: "p", NodeID: "n", TaskRootDirectory: "workitems/j/job-1/" + id, TaskRootDirectoryURL: "https://acct.westeurope.batch.azure.com/pools/p/nodes/n/files/workitems/j/job-1/" + id}
	}
	return t
}

func sampleJob(id string, now time.Time) BatchJob {
	return BatchJob{
		ID: id, URL: "https://acct.westeurope.batch.azure.com/jobs/" + id, ETag: "0x8D3D623CD661246",
		LastModified: now, CreationTime: now, State: JobStateActive, StateTransitionTime: now,
		UsesTaskDependencies: true, MaxParallelTasks: -1,
		PoolInfo:           BatchPoolInfo{PoolID: "p"},
		OnAllTasksComplete: AllTasksCompleteNoAction,
		OnTaskFailure:      TaskFailureNoAction,
		Constraints:        &BatchJobConstraints{MaxWallClockTime: timeSpanMax, MaxTaskRetryCount: Ptr[int32](0)},
		Metadata:           []BatchMetadataItem{{Name: "team", Value: "genomics"}},
		ExecutionInfo:      &BatchJobExecutionInfo{StartTime: now, PoolID: "p"},
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMarshalKeepsShellCharacters: marshal does not escape < > & in
// command lines, which would only inflate bodies.
func TestMarshalKeepsShellCharacters(t *testing.T) {
	b := mustMarshal(t, BatchTaskCreateOptions{ID: "t", CommandLine: "a > b && c < d"})
	if !strings.Contains(string(b), "a > b && c < d") {
		t.Errorf("marshal escaped the command line: %s", b)
	}
}
