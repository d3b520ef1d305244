package azurebatch

// The request and response bodies of the Batch operations bmc uses, with
// the wire names of the data-plane spec (api-version 2025-06-01). Each type
// carries the name of its spec definition, so the two can be read side by
// side; the tests validate every request body against those definitions.
//
// Optional numbers and booleans are pointers: for several of them zero is
// not the default (a task's maxTaskRetryCount of 0 overrides the job's), so
// "unset" must stay distinguishable from zero. Ptr makes them in one line.
// Durations are ISO-8601 strings on the wire; FormatDuration and
// ParseDuration convert.

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the data-plane api-version every request carries.
const APIVersion = "2025-06-01"

// Ptr returns a pointer to v, for the optional fields of request bodies.
func Ptr[T any](v T) *T { return &v }

// ---- enums (spec spellings; most are lower case, a few are not) ----

// BatchPoolState is a pool's state.
type BatchPoolState string

// Pool states.
const (
	PoolStateActive   BatchPoolState = "active"
	PoolStateDeleting BatchPoolState = "deleting"
)

// AllocationState says whether a pool is resizing.
type AllocationState string

// Pool allocation states.
const (
	AllocationStateSteady   AllocationState = "steady"
	AllocationStateResizing AllocationState = "resizing"
	AllocationStateStopping AllocationState = "stopping"
)

// BatchJobState is a job's state.
type BatchJobState string

// Job states.
const (
	JobStateActive      BatchJobState = "active"
	JobStateDisabling   BatchJobState = "disabling"
	JobStateDisabled    BatchJobState = "disabled"
	JobStateEnabling    BatchJobState = "enabling"
	JobStateTerminating BatchJobState = "terminating"
	JobStateCompleted   BatchJobState = "completed"
	JobStateDeleting    BatchJobState = "deleting"
)

// BatchTaskState is a task's state. A retried task goes back to active.
type BatchTaskState string

// Task states.
const (
	TaskStateActive    BatchTaskState = "active"
	TaskStatePreparing BatchTaskState = "preparing"
	TaskStateRunning   BatchTaskState = "running"
	TaskStateCompleted BatchTaskState = "completed"
)

// BatchAllTasksCompleteMode is what a job does once all its tasks have
// completed. A job with no tasks counts as complete, so create it with
// noaction and patch it to terminatejob after adding the tasks.
type BatchAllTasksCompleteMode string

// All-tasks-complete modes.
const (
	AllTasksCompleteNoAction     BatchAllTasksCompleteMode = "noaction"
	AllTasksCompleteTerminateJob BatchAllTasksCompleteMode = "terminatejob"
)

// BatchTaskFailureMode is what a job does when one of its tasks fails.
type BatchTaskFailureMode string

// Task-failure modes.
const (
	TaskFailureNoAction                    BatchTaskFailureMode = "noaction"
	TaskFailurePerformExitOptionsJobAction BatchTaskFailureMode = "performexitoptionsjobaction"
)

// BatchTaskAddStatus is the outcome of one task in an add-collection call.
type BatchTaskAddStatus string

// Add-collection item outcomes.
const (
	TaskAddSuccess     BatchTaskAddStatus = "success"
	TaskAddClientError BatchTaskAddStatus = "clienterror"
	TaskAddServerError BatchTaskAddStatus = "servererror"
)

// BatchTaskExecutionResult is the result of a completed task.
type BatchTaskExecutionResult string

// Task execution results.
const (
	TaskResultSuccess BatchTaskExecutionResult = "success"
	TaskResultFailure BatchTaskExecutionResult = "failure"
)

// BatchErrorSourceCategory says whose fault a task or job failure was.
type BatchErrorSourceCategory string

// Failure categories.
const (
	ErrorCategoryUser   BatchErrorSourceCategory = "usererror"
	ErrorCategoryServer BatchErrorSourceCategory = "servererror"
)

// ContainerType is the container technology of a pool.
type ContainerType string

// Container types.
const (
	ContainerTypeDockerCompatible ContainerType = "dockerCompatible"
	ContainerTypeCRICompatible    ContainerType = "criCompatible"
)

// ContainerWorkingDirectory is where a container task starts.
type ContainerWorkingDirectory string

// Container working directories.
const (
	ContainerWorkingDirectoryTask  ContainerWorkingDirectory = "taskWorkingDirectory"
	ContainerWorkingDirectoryImage ContainerWorkingDirectory = "containerImageDefault"
)

// ContainerHostDataPath names a node directory a container task can mount.
type ContainerHostDataPath string

// Container host data paths.
const (
	ContainerHostShared       ContainerHostDataPath = "Shared"
	ContainerHostStartup      ContainerHostDataPath = "Startup"
	ContainerHostVfsMounts    ContainerHostDataPath = "VfsMounts"
	ContainerHostTask         ContainerHostDataPath = "Task"
	ContainerHostJobPrep      ContainerHostDataPath = "JobPrep"
	ContainerHostApplications ContainerHostDataPath = "Applications"
)

// AutoUserScope is the scope of an auto user.
type AutoUserScope string

// Auto-user scopes.
const (
	AutoUserScopeTask AutoUserScope = "task"
	AutoUserScopePool AutoUserScope = "pool"
)

// ElevationLevel is a user's elevation.
type ElevationLevel string

// Elevation levels.
const (
	ElevationNonAdmin ElevationLevel = "nonadmin"
	ElevationAdmin    ElevationLevel = "admin"
)

// OutputFileUploadCondition says after which outcomes an output uploads.
type OutputFileUploadCondition string

// Upload conditions.
const (
	UploadOnTaskSuccess    OutputFileUploadCondition = "tasksuccess"
	UploadOnTaskFailure    OutputFileUploadCondition = "taskfailure"
	UploadOnTaskCompletion OutputFileUploadCondition = "taskcompletion"
)

// BatchJobActionKind is what an exit condition does to the job.
type BatchJobActionKind string

// Job actions.
const (
	JobActionNone      BatchJobActionKind = "none"
	JobActionDisable   BatchJobActionKind = "disable"
	JobActionTerminate BatchJobActionKind = "terminate"
)

// DependencyAction is what an exit condition does to dependent tasks.
type DependencyAction string

// Dependency actions.
const (
	DependencySatisfy DependencyAction = "satisfy"
	DependencyBlock   DependencyAction = "block"
)

// BatchNodeFillType is how tasks spread over a pool's nodes.
type BatchNodeFillType string

// Node fill types.
const (
	NodeFillSpread BatchNodeFillType = "spread"
	NodeFillPack   BatchNodeFillType = "pack"
)

// BatchJobDefaultOrder orders tasks of equal-priority jobs on a pool (the
// spec declares it inline in BatchTaskSchedulingPolicy).
type BatchJobDefaultOrder string

// Job default orders.
const (
	JobDefaultOrderNone         BatchJobDefaultOrder = "none"
	JobDefaultOrderCreationTime BatchJobDefaultOrder = "creationtime"
)

// BatchAccessScope is what an authentication token grants.
type BatchAccessScope string

// Access scopes.
const (
	AccessScopeJob BatchAccessScope = "job"
)

// BatchPoolIdentityType is the kind of a pool's managed identity.
type BatchPoolIdentityType string

// Pool identity types.
const (
	PoolIdentityUserAssigned BatchPoolIdentityType = "UserAssigned"
	PoolIdentityNone         BatchPoolIdentityType = "None"
)

// BatchNodeDeallocationOption is what happens to running tasks on nodes a
// resize removes. (Not in the spec excerpt; spellings from the Batch REST
// reference for Pool - Resize.)
type BatchNodeDeallocationOption string

// Node deallocation options.
const (
	DeallocationRequeue        BatchNodeDeallocationOption = "requeue"
	DeallocationTerminate      BatchNodeDeallocationOption = "terminate"
	DeallocationTaskCompletion BatchNodeDeallocationOption = "taskcompletion"
	DeallocationRetainedData   BatchNodeDeallocationOption = "retaineddata"
)

// ---- shared pieces ----

// BatchMetadataItem is a name-value pair attached to a pool or job.
type BatchMetadataItem struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// NameValuePair is a name-value pair in failure details.
type NameValuePair struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// EnvironmentSetting is an environment variable for a task. Value is sent
// even when empty: an empty variable is still a variable.
type EnvironmentSetting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// BatchApplicationPackageReference names an application package. On a pool
// ApplicationID is the full ARM id of the application; on a task, its id.
// An empty Version means the application's default version.
type BatchApplicationPackageReference struct {
	ApplicationID string `json:"applicationId"`
	Version       string `json:"version,omitempty"`
}

// BatchNodeIdentityReference names a user-assigned identity of the pool.
type BatchNodeIdentityReference struct {
	ResourceID string `json:"resourceId,omitempty"`
}

// ResourceFile is a file downloaded to a node before a task runs. Exactly
// one of AutoStorageContainerName, StorageContainerURL and HTTPURL is set.
type ResourceFile struct {
	AutoStorageContainerName string                      `json:"autoStorageContainerName,omitempty"`
	StorageContainerURL      string                      `json:"storageContainerUrl,omitempty"`
	HTTPURL                  string                      `json:"httpUrl,omitempty"`
	BlobPrefix               string                      `json:"blobPrefix,omitempty"`
	FilePath                 string                      `json:"filePath,omitempty"`
	FileMode                 string                      `json:"fileMode,omitempty"`
	IdentityReference        *BatchNodeIdentityReference `json:"identityReference,omitempty"`
}

// OutputFile uploads files matching FilePattern after a task runs.
type OutputFile struct {
	FilePattern   string                 `json:"filePattern"`
	Destination   OutputFileDestination  `json:"destination"`
	UploadOptions OutputFileUploadConfig `json:"uploadOptions"`
}

// OutputFileDestination is where an output goes.
type OutputFileDestination struct {
	Container *OutputFileBlobContainerDestination `json:"container,omitempty"`
}

// OutputFileBlobContainerDestination is a blob container destination.
type OutputFileBlobContainerDestination struct {
	Path              string                      `json:"path,omitempty"`
	ContainerURL      string                      `json:"containerUrl"`
	IdentityReference *BatchNodeIdentityReference `json:"identityReference,omitempty"`
	UploadHeaders     []OutputFileUploadHeader    `json:"uploadHeaders,omitempty"`
}

// OutputFileUploadHeader is an HTTP header set on an uploaded blob.
type OutputFileUploadHeader struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// OutputFileUploadConfig says when an output uploads.
type OutputFileUploadConfig struct {
	UploadCondition OutputFileUploadCondition `json:"uploadCondition"`
}

// BatchTaskConstraints bound a task's run time, retention and retries.
// MaxTaskRetryCount nil means the job's; -1 means unlimited.
type BatchTaskConstraints struct {
	MaxWallClockTime  string `json:"maxWallClockTime,omitempty"`
	RetentionTime     string `json:"retentionTime,omitempty"`
	MaxTaskRetryCount *int32 `json:"maxTaskRetryCount,omitempty"`
}

// UserIdentity is the user a task runs as: a named user or an auto user.
type UserIdentity struct {
	Username string                 `json:"username,omitempty"`
	AutoUser *AutoUserSpecification `json:"autoUser,omitempty"`
}

// AutoUserSpecification describes an auto user.
type AutoUserSpecification struct {
	Scope          AutoUserScope  `json:"scope,omitempty"`
	ElevationLevel ElevationLevel `json:"elevationLevel,omitempty"`
}

// BatchTaskContainerSettings runs a task in a container.
type BatchTaskContainerSettings struct {
	ContainerRunOptions          string                             `json:"containerRunOptions,omitempty"`
	ImageName                    string                             `json:"imageName"`
	Registry                     *ContainerRegistryReference        `json:"registry,omitempty"`
	WorkingDirectory             ContainerWorkingDirectory          `json:"workingDirectory,omitempty"`
	ContainerHostBatchBindMounts []ContainerHostBatchBindMountEntry `json:"containerHostBatchBindMounts,omitempty"`
}

// ContainerRegistryReference is a private container registry.
type ContainerRegistryReference struct {
	Username          string                      `json:"username,omitempty"`
	Password          string                      `json:"password,omitempty"`
	RegistryServer    string                      `json:"registryServer,omitempty"`
	IdentityReference *BatchNodeIdentityReference `json:"identityReference,omitempty"`
}

// ContainerHostBatchBindMountEntry mounts a node directory in a container.
type ContainerHostBatchBindMountEntry struct {
	Source     ContainerHostDataPath `json:"source,omitempty"`
	IsReadOnly *bool                 `json:"isReadOnly,omitempty"`
}

// BatchTaskDependencies lists the tasks a task waits for.
type BatchTaskDependencies struct {
	TaskIDs      []string           `json:"taskIds,omitempty"`
	TaskIDRanges []BatchTaskIDRange `json:"taskIdRanges,omitempty"`
}

// BatchTaskIDRange is an inclusive range of integer task ids.
type BatchTaskIDRange struct {
	Start int32 `json:"start"`
	End   int32 `json:"end"`
}

// ExitConditions map a task's exit to job and dependency actions.
type ExitConditions struct {
	ExitCodes          []ExitCodeMapping      `json:"exitCodes,omitempty"`
	ExitCodeRanges     []ExitCodeRangeMapping `json:"exitCodeRanges,omitempty"`
	PreProcessingError *ExitOptions           `json:"preProcessingError,omitempty"`
	FileUploadError    *ExitOptions           `json:"fileUploadError,omitempty"`
	Default            *ExitOptions           `json:"default,omitempty"`
}

// ExitCodeMapping maps one exit code.
type ExitCodeMapping struct {
	Code        int32       `json:"code"`
	ExitOptions ExitOptions `json:"exitOptions"`
}

// ExitCodeRangeMapping maps an inclusive range of exit codes.
type ExitCodeRangeMapping struct {
	Start       int32       `json:"start"`
	End         int32       `json:"end"`
	ExitOptions ExitOptions `json:"exitOptions"`
}

// ExitOptions is what happens on a given exit.
type ExitOptions struct {
	JobAction        BatchJobActionKind `json:"jobAction,omitempty"`
	DependencyAction DependencyAction   `json:"dependencyAction,omitempty"`
}

// AuthenticationTokenSettings gives a task a token for the Batch API.
type AuthenticationTokenSettings struct {
	Access []BatchAccessScope `json:"access,omitempty"`
}

// BatchAffinityInfo hints at the node a task should run on.
type BatchAffinityInfo struct {
	AffinityID string `json:"affinityId"`
}

// ---- pools ----

// BatchPoolCreateOptions is the body of Create Pool (POST /pools).
type BatchPoolCreateOptions struct {
	ID                           string                             `json:"id"`
	DisplayName                  string                             `json:"displayName,omitempty"`
	VMSize                       string                             `json:"vmSize"`
	VirtualMachineConfiguration  *VirtualMachineConfiguration       `json:"virtualMachineConfiguration,omitempty"`
	ResizeTimeout                string                             `json:"resizeTimeout,omitempty"`
	TargetDedicatedNodes         *int32                             `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes       *int32                             `json:"targetLowPriorityNodes,omitempty"`
	EnableAutoScale              *bool                              `json:"enableAutoScale,omitempty"`
	AutoScaleFormula             string                             `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval  string                             `json:"autoScaleEvaluationInterval,omitempty"`
	EnableInterNodeCommunication *bool                              `json:"enableInterNodeCommunication,omitempty"`
	StartTask                    *BatchStartTask                    `json:"startTask,omitempty"`
	ApplicationPackageReferences []BatchApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	TaskSlotsPerNode             *int32                             `json:"taskSlotsPerNode,omitempty"`
	TaskSchedulingPolicy         *BatchTaskSchedulingPolicy         `json:"taskSchedulingPolicy,omitempty"`
	Metadata                     []BatchMetadataItem                `json:"metadata,omitempty"`
}

// VirtualMachineConfiguration is the image and agent of a pool's nodes.
type VirtualMachineConfiguration struct {
	ImageReference         BatchVMImageReference        `json:"imageReference"`
	NodeAgentSKUID         string                       `json:"nodeAgentSKUId"`
	LicenseType            string                       `json:"licenseType,omitempty"`
	ContainerConfiguration *BatchContainerConfiguration `json:"containerConfiguration,omitempty"`
}

// BatchVMImageReference (spec: BatchVmImageReference) is a marketplace
// image (publisher, offer, sku, version) or a custom image by ARM id.
type BatchVMImageReference struct {
	Publisher               string `json:"publisher,omitempty"`
	Offer                   string `json:"offer,omitempty"`
	SKU                     string `json:"sku,omitempty"`
	Version                 string `json:"version,omitempty"`
	VirtualMachineImageID   string `json:"virtualMachineImageId,omitempty"`
	ExactVersion            string `json:"exactVersion,omitempty"` // read-only
	SharedGalleryImageID    string `json:"sharedGalleryImageId,omitempty"`
	CommunityGalleryImageID string `json:"communityGalleryImageId,omitempty"`
}

// BatchContainerConfiguration enables containers on a pool.
type BatchContainerConfiguration struct {
	Type                ContainerType                `json:"type"`
	ContainerImageNames []string                     `json:"containerImageNames,omitempty"`
	ContainerRegistries []ContainerRegistryReference `json:"containerRegistries,omitempty"`
}

// BatchStartTask runs on each node as it joins the pool.
type BatchStartTask struct {
	CommandLine         string                      `json:"commandLine"`
	ContainerSettings   *BatchTaskContainerSettings `json:"containerSettings,omitempty"`
	ResourceFiles       []ResourceFile              `json:"resourceFiles,omitempty"`
	EnvironmentSettings []EnvironmentSetting        `json:"environmentSettings,omitempty"`
	UserIdentity        *UserIdentity               `json:"userIdentity,omitempty"`
	MaxTaskRetryCount   *int32                      `json:"maxTaskRetryCount,omitempty"`
	WaitForSuccess      *bool                       `json:"waitForSuccess,omitempty"`
}

// BatchTaskSchedulingPolicy is how tasks are placed on nodes.
type BatchTaskSchedulingPolicy struct {
	JobDefaultOrder BatchJobDefaultOrder `json:"jobDefaultOrder,omitempty"`
	NodeFillType    BatchNodeFillType    `json:"nodeFillType"`
}

// BatchPoolResizeOptions is the body of Resize Pool
// (POST /pools/{poolId}/resize). Not in the spec excerpt; field names from
// the Batch REST reference.
type BatchPoolResizeOptions struct {
	TargetDedicatedNodes   *int32                      `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes *int32                      `json:"targetLowPriorityNodes,omitempty"`
	ResizeTimeout          string                      `json:"resizeTimeout,omitempty"`
	NodeDeallocationOption BatchNodeDeallocationOption `json:"nodeDeallocationOption,omitempty"`
}

// BatchPool is what Get Pool returns, as far as a client reads it. Not in
// the spec excerpt; field names from the Batch REST reference.
type BatchPool struct {
	ID                            string                             `json:"id"`
	DisplayName                   string                             `json:"displayName,omitempty"`
	URL                           string                             `json:"url,omitempty"`
	ETag                          string                             `json:"eTag,omitempty"`
	LastModified                  time.Time                          `json:"lastModified,omitzero"`
	CreationTime                  time.Time                          `json:"creationTime,omitzero"`
	State                         BatchPoolState                     `json:"state,omitempty"`
	StateTransitionTime           time.Time                          `json:"stateTransitionTime,omitzero"`
	AllocationState               AllocationState                    `json:"allocationState,omitempty"`
	AllocationStateTransitionTime time.Time                          `json:"allocationStateTransitionTime,omitzero"`
	VMSize                        string                             `json:"vmSize,omitempty"`
	VirtualMachineConfiguration   *VirtualMachineConfiguration       `json:"virtualMachineConfiguration,omitempty"`
	ResizeTimeout                 string                             `json:"resizeTimeout,omitempty"`
	ResizeErrors                  []ResizeError                      `json:"resizeErrors,omitempty"`
	CurrentDedicatedNodes         int32                              `json:"currentDedicatedNodes"`
	CurrentLowPriorityNodes       int32                              `json:"currentLowPriorityNodes"`
	TargetDedicatedNodes          int32                              `json:"targetDedicatedNodes"`
	TargetLowPriorityNodes        int32                              `json:"targetLowPriorityNodes"`
	EnableAutoScale               bool                               `json:"enableAutoScale"`
	AutoScaleFormula              string                             `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval   string                             `json:"autoScaleEvaluationInterval,omitempty"`
	TaskSlotsPerNode              int32                              `json:"taskSlotsPerNode,omitempty"`
	TaskSchedulingPolicy          *BatchTaskSchedulingPolicy         `json:"taskSchedulingPolicy,omitempty"`
	StartTask                     *BatchStartTask                    `json:"startTask,omitempty"`
	ApplicationPackageReferences  []BatchApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	Metadata                      []BatchMetadataItem                `json:"metadata,omitempty"`
	Identity                      *BatchPoolIdentity                 `json:"identity,omitempty"`
}

// ResizeError is why a pool's last resize fell short.
type ResizeError struct {
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
	Values  []NameValuePair `json:"values,omitempty"`
}

// BatchPoolIdentity is a pool's managed identities (set through ARM only).
type BatchPoolIdentity struct {
	Type                   BatchPoolIdentityType       `json:"type"`
	UserAssignedIdentities []BatchUserAssignedIdentity `json:"userAssignedIdentities,omitempty"`
}

// BatchUserAssignedIdentity is one user-assigned identity of a pool.
type BatchUserAssignedIdentity struct {
	ResourceID  string `json:"resourceId"`
	ClientID    string `json:"clientId,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
}

// ---- jobs ----

// BatchJobCreateOptions is the body of Create Job (POST /jobs).
type BatchJobCreateOptions struct {
	ID                        string                    `json:"id"`
	DisplayName               string                    `json:"displayName,omitempty"`
	UsesTaskDependencies      *bool                     `json:"usesTaskDependencies,omitempty"`
	Priority                  *int32                    `json:"priority,omitempty"`
	AllowTaskPreemption       *bool                     `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks          *int32                    `json:"maxParallelTasks,omitempty"`
	Constraints               *BatchJobConstraints      `json:"constraints,omitempty"`
	JobManagerTask            *BatchJobManagerTask      `json:"jobManagerTask,omitempty"`
	CommonEnvironmentSettings []EnvironmentSetting      `json:"commonEnvironmentSettings,omitempty"`
	PoolInfo                  BatchPoolInfo             `json:"poolInfo"`
	OnAllTasksComplete        BatchAllTasksCompleteMode `json:"onAllTasksComplete,omitempty"`
	OnTaskFailure             BatchTaskFailureMode      `json:"onTaskFailure,omitempty"`
	Metadata                  []BatchMetadataItem       `json:"metadata,omitempty"`
}

// BatchPoolInfo names the pool a job runs on. bmc always names an existing
// pool; auto pools are not modelled.
type BatchPoolInfo struct {
	PoolID string `json:"poolId,omitempty"`
}

// BatchJobConstraints bound a job's run time and its tasks' retries.
type BatchJobConstraints struct {
	MaxWallClockTime  string `json:"maxWallClockTime,omitempty"`
	MaxTaskRetryCount *int32 `json:"maxTaskRetryCount,omitempty"`
}

// BatchJobManagerTask is started when the job starts; bmc runs its
// finalize watcher as one.
type BatchJobManagerTask struct {
	ID                           string                             `json:"id"`
	DisplayName                  string                             `json:"displayName,omitempty"`
	CommandLine                  string                             `json:"commandLine"`
	ContainerSettings            *BatchTaskContainerSettings        `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                     `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                       `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting               `json:"environmentSettings,omitempty"`
	Constraints                  *BatchTaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                *int32                             `json:"requiredSlots,omitempty"`
	KillJobOnCompletion          *bool                              `json:"killJobOnCompletion,omitempty"`
	UserIdentity                 *UserIdentity                      `json:"userIdentity,omitempty"`
	RunExclusive                 *bool                              `json:"runExclusive,omitempty"`
	ApplicationPackageReferences []BatchApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings       `json:"authenticationTokenSettings,omitempty"`
	AllowLowPriorityNode         *bool                              `json:"allowLowPriorityNode,omitempty"`
}

// BatchJobUpdateOptions is the body of Update Job (PATCH /jobs/{jobId});
// unset fields are left as they are.
type BatchJobUpdateOptions struct {
	Priority            *int32                    `json:"priority,omitempty"`
	AllowTaskPreemption *bool                     `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks    *int32                    `json:"maxParallelTasks,omitempty"`
	Constraints         *BatchJobConstraints      `json:"constraints,omitempty"`
	OnAllTasksComplete  BatchAllTasksCompleteMode `json:"onAllTasksComplete,omitempty"`
	Metadata            []BatchMetadataItem       `json:"metadata,omitempty"`
}

// BatchJobTerminateOptions is the optional body of Terminate Job.
type BatchJobTerminateOptions struct {
	TerminateReason string `json:"terminateReason,omitempty"`
}

// BatchJob is what Get Job returns.
type BatchJob struct {
	ID                          string                    `json:"id"`
	DisplayName                 string                    `json:"displayName,omitempty"`
	UsesTaskDependencies        bool                      `json:"usesTaskDependencies,omitempty"`
	URL                         string                    `json:"url"`
	ETag                        string                    `json:"eTag"`
	LastModified                time.Time                 `json:"lastModified"`
	CreationTime                time.Time                 `json:"creationTime"`
	State                       BatchJobState             `json:"state"`
	StateTransitionTime         time.Time                 `json:"stateTransitionTime"`
	PreviousState               BatchJobState             `json:"previousState,omitempty"`
	PreviousStateTransitionTime time.Time                 `json:"previousStateTransitionTime,omitzero"`
	Priority                    int32                     `json:"priority,omitempty"`
	AllowTaskPreemption         bool                      `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks            int32                     `json:"maxParallelTasks,omitempty"`
	Constraints                 *BatchJobConstraints      `json:"constraints,omitempty"`
	JobManagerTask              *BatchJobManagerTask      `json:"jobManagerTask,omitempty"`
	CommonEnvironmentSettings   []EnvironmentSetting      `json:"commonEnvironmentSettings,omitempty"`
	PoolInfo                    BatchPoolInfo             `json:"poolInfo"`
	OnAllTasksComplete          BatchAllTasksCompleteMode `json:"onAllTasksComplete,omitempty"`
	OnTaskFailure               BatchTaskFailureMode      `json:"onTaskFailure,omitempty"`
	Metadata                    []BatchMetadataItem       `json:"metadata,omitempty"`
	ExecutionInfo               *BatchJobExecutionInfo    `json:"executionInfo,omitempty"`
}

// BatchJobExecutionInfo is a job's run so far.
type BatchJobExecutionInfo struct {
	StartTime       time.Time                `json:"startTime"`
	EndTime         time.Time                `json:"endTime,omitzero"`
	PoolID          string                   `json:"poolId,omitempty"`
	SchedulingError *BatchJobSchedulingError `json:"schedulingError,omitempty"`
	// TerminateReason is set by the service (JMComplete,
	// MaxWallClockTimeExpiry, TerminateJobSchedule, AllTasksComplete,
	// TaskFailed) or by the caller of Terminate Job (UserTerminate).
	TerminateReason string `json:"terminateReason,omitempty"`
}

// BatchJobSchedulingError is why a job could not be scheduled.
type BatchJobSchedulingError struct {
	Category BatchErrorSourceCategory `json:"category"`
	Code     string                   `json:"code,omitempty"`
	Message  string                   `json:"message,omitempty"`
	Details  []NameValuePair          `json:"details,omitempty"`
}

// ---- tasks ----

// BatchTaskCreateOptions is the body of Create Task and one element of
// BatchTaskGroup.
type BatchTaskCreateOptions struct {
	ID                           string                             `json:"id"`
	DisplayName                  string                             `json:"displayName,omitempty"`
	ExitConditions               *ExitConditions                    `json:"exitConditions,omitempty"`
	CommandLine                  string                             `json:"commandLine"`
	ContainerSettings            *BatchTaskContainerSettings        `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                     `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                       `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting               `json:"environmentSettings,omitempty"`
	AffinityInfo                 *BatchAffinityInfo                 `json:"affinityInfo,omitempty"`
	Constraints                  *BatchTaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                *int32                             `json:"requiredSlots,omitempty"`
	UserIdentity                 *UserIdentity                      `json:"userIdentity,omitempty"`
	DependsOn                    *BatchTaskDependencies             `json:"dependsOn,omitempty"`
	ApplicationPackageReferences []BatchApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings       `json:"authenticationTokenSettings,omitempty"`
}

// BatchTaskGroup is the body of Add Task Collection: at most 100 tasks,
// serialized to less than 1 MB.
type BatchTaskGroup struct {
	Value []BatchTaskCreateOptions `json:"value"`
}

// BatchCreateTaskCollectionResult is the answer to Add Task Collection:
// one result per task, not necessarily in request order.
type BatchCreateTaskCollectionResult struct {
	Value []BatchTaskCreateResult `json:"value,omitempty"`
}

// BatchTaskCreateResult is the outcome of adding one task.
type BatchTaskCreateResult struct {
	Status       BatchTaskAddStatus `json:"status"`
	TaskID       string             `json:"taskId"`
	ETag         string             `json:"eTag,omitempty"`
	LastModified time.Time          `json:"lastModified,omitzero"`
	Location     string             `json:"location,omitempty"`
	Error        *BatchError        `json:"error,omitempty"`
}

// BatchTask is what Get Task and List Tasks return ($select may leave
// out any field).
type BatchTask struct {
	ID                           string                             `json:"id"`
	DisplayName                  string                             `json:"displayName,omitempty"`
	URL                          string                             `json:"url,omitempty"`
	ETag                         string                             `json:"eTag,omitempty"`
	LastModified                 time.Time                          `json:"lastModified,omitzero"`
	CreationTime                 time.Time                          `json:"creationTime,omitzero"`
	ExitConditions               *ExitConditions                    `json:"exitConditions,omitempty"`
	State                        BatchTaskState                     `json:"state,omitempty"`
	StateTransitionTime          time.Time                          `json:"stateTransitionTime,omitzero"`
	PreviousState                BatchTaskState                     `json:"previousState,omitempty"`
	PreviousStateTransitionTime  time.Time                          `json:"previousStateTransitionTime,omitzero"`
	CommandLine                  string                             `json:"commandLine,omitempty"`
	ContainerSettings            *BatchTaskContainerSettings        `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                     `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                       `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting               `json:"environmentSettings,omitempty"`
	AffinityInfo                 *BatchAffinityInfo                 `json:"affinityInfo,omitempty"`
	Constraints                  *BatchTaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                int32                              `json:"requiredSlots,omitempty"`
	UserIdentity                 *UserIdentity                      `json:"userIdentity,omitempty"`
	ExecutionInfo                *BatchTaskExecutionInfo            `json:"executionInfo,omitempty"`
	NodeInfo                     *BatchNodeInfo                     `json:"nodeInfo,omitempty"`
	DependsOn                    *BatchTaskDependencies             `json:"dependsOn,omitempty"`
	ApplicationPackageReferences []BatchApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings       `json:"authenticationTokenSettings,omitempty"`
}

// BatchTaskExecutionInfo is a task's run so far. A task has failed iff
// FailureInfo is set.
type BatchTaskExecutionInfo struct {
	StartTime time.Time `json:"startTime,omitzero"`
	EndTime   time.Time `json:"endTime,omitzero"`
	// ExitCode is set only once the task has completed; an OS code when
	// the task was killed.
	ExitCode        *int32                           `json:"exitCode,omitempty"`
	ContainerInfo   *BatchTaskContainerExecutionInfo `json:"containerInfo,omitempty"`
	FailureInfo     *BatchTaskFailureInfo            `json:"failureInfo,omitempty"`
	RetryCount      int32                            `json:"retryCount"`
	LastRetryTime   time.Time                        `json:"lastRetryTime,omitzero"`
	RequeueCount    int32                            `json:"requeueCount"`
	LastRequeueTime time.Time                        `json:"lastRequeueTime,omitzero"`
	Result          BatchTaskExecutionResult         `json:"result,omitempty"`
}

// BatchTaskContainerExecutionInfo is a container task's container.
type BatchTaskContainerExecutionInfo struct {
	ContainerID string `json:"containerId,omitempty"`
	State       string `json:"state,omitempty"`
	Error       string `json:"error,omitempty"`
}

// BatchTaskFailureInfo is why a task failed.
type BatchTaskFailureInfo struct {
	Category BatchErrorSourceCategory `json:"category"`
	Code     string                   `json:"code,omitempty"`
	Message  string                   `json:"message,omitempty"`
	Details  []NameValuePair          `json:"details,omitempty"`
}

// BatchNodeInfo is the node a task ran on.
type BatchNodeInfo struct {
	AffinityID           string `json:"affinityId,omitempty"`
	NodeURL              string `json:"nodeUrl,omitempty"`
	PoolID               string `json:"poolId,omitempty"`
	NodeID               string `json:"nodeId,omitempty"`
	TaskRootDirectory    string `json:"taskRootDirectory,omitempty"`
	TaskRootDirectoryURL string `json:"taskRootDirectoryUrl,omitempty"`
}

// BatchTaskListResult is one page of List Tasks. An empty NextLink means
// the last page.
type BatchTaskListResult struct {
	Value    []BatchTask `json:"value,omitempty"`
	NextLink string      `json:"odata.nextLink,omitempty"`
}

// BatchTaskCountsResult is the answer to Get Task Counts. Counts can lag
// behind task states; Running includes preparing tasks.
type BatchTaskCountsResult struct {
	TaskCounts     BatchTaskCounts     `json:"taskCounts"`
	TaskSlotCounts BatchTaskSlotCounts `json:"taskSlotCounts"`
}

// BatchTaskCounts counts a job's tasks by state.
type BatchTaskCounts struct {
	Active    int32 `json:"active"`
	Running   int32 `json:"running"`
	Completed int32 `json:"completed"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
}

// BatchTaskSlotCounts counts the slots a job's tasks take, by state.
type BatchTaskSlotCounts BatchTaskCounts

// ---- errors ----

// BatchError is the body of a failed call, and the error of one task in an
// add-collection result.
type BatchError struct {
	Code    string             `json:"code,omitempty"`
	Message *BatchErrorMessage `json:"message,omitempty"`
	Values  []BatchErrorDetail `json:"values,omitempty"`
}

// BatchErrorMessage is a localized error message.
type BatchErrorMessage struct {
	Lang  string `json:"lang,omitempty"`
	Value string `json:"value,omitempty"`
}

// BatchErrorDetail is a key-value detail of an error.
type BatchErrorDetail struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

// ---- durations ----

// Unbounded is the duration ParseDuration returns for a value beyond
// time.Duration's range, such as the .NET TimeSpan.MaxValue
// ("P10675199DT2H48M5.4775807S") Batch reports for "no limit".
// FormatDuration turns it back into that value.
const Unbounded = time.Duration(math.MaxInt64)

// timeSpanMax is how Batch writes an unbounded duration.
const timeSpanMax = "P10675199DT2H48M5.4775807S"

// FormatDuration writes d as an ISO-8601 duration in hours, minutes and
// seconds: 90*time.Minute is "PT1H30M", 0 is "PT0S", 1500*time.Millisecond
// is "PT1.5S". Unbounded is written as Batch writes it.
func FormatDuration(d time.Duration) string {
	if d == Unbounded {
		return timeSpanMax
	}
	if d == 0 {
		return "PT0S"
	}
	var b strings.Builder
	// Work in uint64 so that the most negative duration has a magnitude.
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u
	}
	b.WriteString("PT")
	h := u / uint64(time.Hour)
	u -= h * uint64(time.Hour)
	m := u / uint64(time.Minute)
	u -= m * uint64(time.Minute)
	s := u / uint64(time.Second)
	ns := u - s*uint64(time.Second)
	if h > 0 {
		b.WriteString(strconv.FormatUint(h, 10) + "H")
	}
	if m > 0 {
		b.WriteString(strconv.FormatUint(m, 10) + "M")
	}
	if s > 0 || ns > 0 {
		b.WriteString(strconv.FormatUint(s, 10))
		if ns > 0 {
			b.WriteString(strings.TrimRight(fmt.Sprintf(".%09d", ns), "0"))
		}
		b.WriteByte('S')
	}
	return b.String()
}

// ParseDuration reads an ISO-8601 duration of days, hours, minutes and
// seconds (weeks too), as Batch writes them: "PT1H30M", "P2DT0.5S",
// "-PT5M". Years and months are refused, having no fixed length. A value
// too large for time.Duration (TimeSpan.MaxValue among them) is Unbounded.
// Fractions finer than a nanosecond are dropped.
func ParseDuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("duration %q: %s", s, why)
	}
	rest := s
	neg := false
	if strings.HasPrefix(rest, "-") {
		neg, rest = true, rest[1:]
	}
	if !strings.HasPrefix(rest, "P") || len(rest) == 1 {
		return bad("not an ISO-8601 duration (PnDTnHnMnS)")
	}
	rest = rest[1:]
	var total durSum
	inTime, seen := false, false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad("second T")
			}
			inTime, rest = true, rest[1:]
			if rest == "" {
				return bad("T with no time")
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.' || rest[i] == ',') {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad("number without a unit")
		}
		num, unit := strings.ReplaceAll(rest[:i], ",", "."), rest[i]
		rest = rest[i+1:]
		var scale time.Duration
		switch {
		case !inTime && unit == 'W':
			scale = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			scale = 24 * time.Hour
		case !inTime && (unit == 'Y' || unit == 'M'):
			return bad("years and months have no fixed length")
		case inTime && unit == 'H':
			scale = time.Hour
		case inTime && unit == 'M':
			scale = time.Minute
		case inTime && unit == 'S':
			scale = time.Second
		default:
			return bad(fmt.Sprintf("unexpected unit %q", unit))
		}
		if err := total.add(num, scale); err != nil {
			return bad(err.Error())
		}
		seen = true
	}
	if !seen {
		return bad("no value")
	}
	if total.over {
		return Unbounded, nil
	}
	if neg {
		return -total.ns, nil
	}
	return total.ns, nil
}

// durSum adds up duration components exactly while they fit in a
// time.Duration, and notes when they do not.
type durSum struct {
	ns   time.Duration
	over bool
}

func (t *durSum) add(num string, scale time.Duration) error {
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" && frac == "" || strings.Contains(frac, ".") {
		return errors.New("malformed number")
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || w > uint64(math.MaxInt64/scale) {
		t.over = true
		return nil
	}
	v := time.Duration(w) * scale
	// The fraction of one unit, to nanosecond precision.
	if frac != "" {
		if len(frac) > 18 {
			frac = frac[:18]
		}
		f, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return errors.New("malformed fraction")
		}
		den := uint64(1)
		for range len(frac) {
			den *= 10
		}
		v += fracOf(scale, f, den)
	}
	if v > math.MaxInt64-t.ns {
		t.over = true
		return nil
	}
	t.ns += v
	return nil
}

// fracOf returns scale*f/den, rounded down, for f < den. The product
// takes 128 bits; the quotient is less than scale, so it fits in 64.
func fracOf(scale time.Duration, f, den uint64) time.Duration {
	hi, lo := bits.Mul64(uint64(scale), f)
	q, _ := bits.Div64(hi, lo, den)
	return time.Duration(q)
}
