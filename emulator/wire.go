package emulator

import "encoding/json"

// This file holds the JSON bodies of the Batch data-plane API, api-version
// 2025-06-01, field for field after the definitions of BatchService.json:
// the same wire names, the same nesting. A field tagged batch:"required" is
// one the spec lists as required in a request body. Properties whose
// definitions the emulator never interprets (network, mounts, user
// accounts, ...) are kept verbatim as json.RawMessage so that what a client
// sends comes back unchanged.

// BatchError is the body of every error response.
type BatchError struct {
	Code    string        `json:"code,omitempty"`
	Message *ErrorMessage `json:"message,omitempty"`
	Values  []ErrorDetail `json:"values,omitempty"`
}

// ErrorMessage is BatchErrorMessage.
type ErrorMessage struct {
	Lang  string `json:"lang,omitempty"`
	Value string `json:"value,omitempty"`
}

// ErrorDetail is BatchErrorDetail.
type ErrorDetail struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
}

// NameValuePair is NameValuePair.
type NameValuePair struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// MetadataItem is BatchMetadataItem.
type MetadataItem struct {
	Name  *string `json:"name" batch:"required"`
	Value *string `json:"value" batch:"required"`
}

// EnvironmentSetting is EnvironmentSetting.
type EnvironmentSetting struct {
	Name  *string `json:"name" batch:"required"`
	Value *string `json:"value,omitempty"`
}

// ApplicationPackageReference is BatchApplicationPackageReference.
type ApplicationPackageReference struct {
	ApplicationID *string `json:"applicationId" batch:"required"`
	Version       string  `json:"version,omitempty"`
}

// AuthenticationTokenSettings is AuthenticationTokenSettings.
type AuthenticationTokenSettings struct {
	Access []AccessScope `json:"access,omitempty"`
}

// AutoUserSpecification is AutoUserSpecification.
type AutoUserSpecification struct {
	Scope          AutoUserScope  `json:"scope,omitempty"`
	ElevationLevel ElevationLevel `json:"elevationLevel,omitempty"`
}

// UserIdentity is UserIdentity.
type UserIdentity struct {
	Username string                 `json:"username,omitempty"`
	AutoUser *AutoUserSpecification `json:"autoUser,omitempty"`
}

// NodeIdentityReference is BatchNodeIdentityReference.
type NodeIdentityReference struct {
	ResourceID string `json:"resourceId,omitempty"`
}

// ResourceFile is ResourceFile.
type ResourceFile struct {
	AutoStorageContainerName string                 `json:"autoStorageContainerName,omitempty"`
	StorageContainerURL      string                 `json:"storageContainerUrl,omitempty"`
	HTTPURL                  string                 `json:"httpUrl,omitempty"`
	BlobPrefix               string                 `json:"blobPrefix,omitempty"`
	FilePath                 string                 `json:"filePath,omitempty"`
	FileMode                 string                 `json:"fileMode,omitempty"`
	IdentityReference        *NodeIdentityReference `json:"identityReference,omitempty"`
}

// OutputFile is OutputFile.
type OutputFile struct {
	FilePattern   *string                 `json:"filePattern" batch:"required"`
	Destination   *OutputFileDestination  `json:"destination" batch:"required"`
	UploadOptions *OutputFileUploadConfig `json:"uploadOptions" batch:"required"`
}

// OutputFileDestination is OutputFileDestination.
type OutputFileDestination struct {
	Container *OutputFileBlobContainerDestination `json:"container,omitempty"`
}

// OutputFileBlobContainerDestination is OutputFileBlobContainerDestination.
type OutputFileBlobContainerDestination struct {
	Path              string                   `json:"path,omitempty"`
	ContainerURL      *string                  `json:"containerUrl" batch:"required"`
	IdentityReference *NodeIdentityReference   `json:"identityReference,omitempty"`
	UploadHeaders     []OutputFileUploadHeader `json:"uploadHeaders,omitempty"`
}

// OutputFileUploadHeader is OutputFileUploadHeader.
type OutputFileUploadHeader struct {
	Name  *string `json:"name" batch:"required"`
	Value string  `json:"value,omitempty"`
}

// OutputFileUploadConfig is OutputFileUploadConfig.
type OutputFileUploadConfig struct {
	UploadCondition *UploadCondition `json:"uploadCondition" batch:"required"`
}

// ExitConditions is ExitConditions.
type ExitConditions struct {
	ExitCodes          []ExitCodeMapping      `json:"exitCodes,omitempty"`
	ExitCodeRanges     []ExitCodeRangeMapping `json:"exitCodeRanges,omitempty"`
	PreProcessingError *ExitOptions           `json:"preProcessingError,omitempty"`
	FileUploadError    *ExitOptions           `json:"fileUploadError,omitempty"`
	Default            *ExitOptions           `json:"default,omitempty"`
}

// ExitCodeMapping is ExitCodeMapping.
type ExitCodeMapping struct {
	Code        *int32       `json:"code" batch:"required"`
	ExitOptions *ExitOptions `json:"exitOptions" batch:"required"`
}

// ExitCodeRangeMapping is ExitCodeRangeMapping.
type ExitCodeRangeMapping struct {
	Start       *int32       `json:"start" batch:"required"`
	End         *int32       `json:"end" batch:"required"`
	ExitOptions *ExitOptions `json:"exitOptions" batch:"required"`
}

// ExitOptions is ExitOptions.
type ExitOptions struct {
	JobAction        JobAction        `json:"jobAction,omitempty"`
	DependencyAction DependencyAction `json:"dependencyAction,omitempty"`
}

// ContainerSettings is BatchTaskContainerSettings.
type ContainerSettings struct {
	ContainerRunOptions          string                    `json:"containerRunOptions,omitempty"`
	ImageName                    *string                   `json:"imageName" batch:"required"`
	Registry                     json.RawMessage           `json:"registry,omitempty"`
	WorkingDirectory             ContainerWorkingDirectory `json:"workingDirectory,omitempty"`
	ContainerHostBatchBindMounts []BindMountEntry          `json:"containerHostBatchBindMounts,omitempty"`
}

// BindMountEntry is ContainerHostBatchBindMountEntry.
type BindMountEntry struct {
	Source     ContainerHostDataPath `json:"source,omitempty"`
	IsReadOnly *bool                 `json:"isReadOnly,omitempty"`
}

// AffinityInfo is BatchAffinityInfo.
type AffinityInfo struct {
	AffinityID *string `json:"affinityId" batch:"required"`
}

// TaskConstraints is BatchTaskConstraints.
type TaskConstraints struct {
	MaxWallClockTime  *Duration `json:"maxWallClockTime,omitempty"`
	RetentionTime     *Duration `json:"retentionTime,omitempty"`
	MaxTaskRetryCount *int32    `json:"maxTaskRetryCount,omitempty"`
}

// MultiInstanceSettings is MultiInstanceSettings.
type MultiInstanceSettings struct {
	NumberOfInstances       *int32         `json:"numberOfInstances,omitempty"`
	CoordinationCommandLine *string        `json:"coordinationCommandLine" batch:"required"`
	CommonResourceFiles     []ResourceFile `json:"commonResourceFiles,omitempty"`
}

// TaskDependencies is BatchTaskDependencies.
type TaskDependencies struct {
	TaskIDs      []string      `json:"taskIds,omitempty"`
	TaskIDRanges []TaskIDRange `json:"taskIdRanges,omitempty"`
}

// TaskIDRange is BatchTaskIdRange.
type TaskIDRange struct {
	Start *int32 `json:"start" batch:"required"`
	End   *int32 `json:"end" batch:"required"`
}

// TaskCreate is BatchTaskCreateOptions, the body of add task and one item
// of add task collection.
type TaskCreate struct {
	ID                           *string                       `json:"id" batch:"required"`
	DisplayName                  string                        `json:"displayName,omitempty"`
	ExitConditions               *ExitConditions               `json:"exitConditions,omitempty"`
	CommandLine                  *string                       `json:"commandLine" batch:"required"`
	ContainerSettings            *ContainerSettings            `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                  `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting          `json:"environmentSettings,omitempty"`
	AffinityInfo                 *AffinityInfo                 `json:"affinityInfo,omitempty"`
	Constraints                  *TaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                *int32                        `json:"requiredSlots,omitempty"`
	UserIdentity                 *UserIdentity                 `json:"userIdentity,omitempty"`
	MultiInstanceSettings        *MultiInstanceSettings        `json:"multiInstanceSettings,omitempty"`
	DependsOn                    *TaskDependencies             `json:"dependsOn,omitempty"`
	ApplicationPackageReferences []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings  `json:"authenticationTokenSettings,omitempty"`
}

// TaskGroup is BatchTaskGroup, the body of add task collection.
type TaskGroup struct {
	Value []TaskCreate `json:"value" batch:"required"`
}

// TaskAddResult is BatchTaskCreateResult.
type TaskAddResult struct {
	Status       TaskAddStatus `json:"status"`
	TaskID       string        `json:"taskId"`
	ETag         string        `json:"eTag,omitempty"`
	LastModified *Time         `json:"lastModified,omitempty"`
	Location     string        `json:"location,omitempty"`
	Error        *BatchError   `json:"error,omitempty"`
}

// TaskAddCollectionResult is BatchCreateTaskCollectionResult.
type TaskAddCollectionResult struct {
	Value []TaskAddResult `json:"value"`
}

// TaskExecutionInfo is BatchTaskExecutionInfo.
type TaskExecutionInfo struct {
	StartTime       *Time            `json:"startTime,omitempty"`
	EndTime         *Time            `json:"endTime,omitempty"`
	ExitCode        *int32           `json:"exitCode,omitempty"`
	ContainerInfo   json.RawMessage  `json:"containerInfo,omitempty"`
	FailureInfo     *TaskFailureInfo `json:"failureInfo,omitempty"`
	RetryCount      int32            `json:"retryCount"`
	LastRetryTime   *Time            `json:"lastRetryTime,omitempty"`
	RequeueCount    int32            `json:"requeueCount"`
	LastRequeueTime *Time            `json:"lastRequeueTime,omitempty"`
	Result          TaskResult       `json:"result,omitempty"`
}

// TaskFailureInfo is BatchTaskFailureInfo (and BatchJobSchedulingError,
// which has the same shape).
type TaskFailureInfo struct {
	Category ErrorCategory   `json:"category"`
	Code     string          `json:"code,omitempty"`
	Message  string          `json:"message,omitempty"`
	Details  []NameValuePair `json:"details,omitempty"`
}

// NodeInfo is BatchNodeInfo.
type NodeInfo struct {
	AffinityID           string `json:"affinityId,omitempty"`
	NodeURL              string `json:"nodeUrl,omitempty"`
	PoolID               string `json:"poolId,omitempty"`
	NodeID               string `json:"nodeId,omitempty"`
	TaskRootDirectory    string `json:"taskRootDirectory,omitempty"`
	TaskRootDirectoryURL string `json:"taskRootDirectoryUrl,omitempty"`
}

// Task is BatchTask.
type Task struct {
	ID                           string                        `json:"id,omitempty"`
	DisplayName                  string                        `json:"displayName,omitempty"`
	URL                          string                        `json:"url,omitempty"`
	ETag                         string                        `json:"eTag,omitempty"`
	LastModified                 *Time                         `json:"lastModified,omitempty"`
	CreationTime                 *Time                         `json:"creationTime,omitempty"`
	ExitConditions               *ExitConditions               `json:"exitConditions,omitempty"`
	State                        TaskState                     `json:"state,omitempty"`
	StateTransitionTime          *Time                         `json:"stateTransitionTime,omitempty"`
	PreviousState                TaskState                     `json:"previousState,omitempty"`
	PreviousStateTransitionTime  *Time                         `json:"previousStateTransitionTime,omitempty"`
	CommandLine                  string                        `json:"commandLine,omitempty"`
	ContainerSettings            *ContainerSettings            `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                  `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting          `json:"environmentSettings,omitempty"`
	AffinityInfo                 *AffinityInfo                 `json:"affinityInfo,omitempty"`
	Constraints                  *TaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                *int32                        `json:"requiredSlots,omitempty"`
	UserIdentity                 *UserIdentity                 `json:"userIdentity,omitempty"`
	ExecutionInfo                *TaskExecutionInfo            `json:"executionInfo,omitempty"`
	NodeInfo                     *NodeInfo                     `json:"nodeInfo,omitempty"`
	MultiInstanceSettings        *MultiInstanceSettings        `json:"multiInstanceSettings,omitempty"`
	DependsOn                    *TaskDependencies             `json:"dependsOn,omitempty"`
	ApplicationPackageReferences []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings  `json:"authenticationTokenSettings,omitempty"`
}

// ListResult is a page of a listing: BatchTaskListResult, BatchJobListResult,
// BatchPoolListResult.
type ListResult[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"odata.nextLink,omitempty"`
}

// TaskUpdate is BatchTaskUpdateOptions, the body of update (PUT) task.
type TaskUpdate struct {
	Constraints *TaskConstraints `json:"constraints,omitempty"`
}

// TaskCounts is BatchTaskCounts and BatchTaskSlotCounts.
type TaskCounts struct {
	Active    int32 `json:"active"`
	Running   int32 `json:"running"`
	Completed int32 `json:"completed"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
}

// TaskCountsResult is BatchTaskCountsResult.
type TaskCountsResult struct {
	TaskCounts     TaskCounts `json:"taskCounts"`
	TaskSlotCounts TaskCounts `json:"taskSlotCounts"`
}

// JobConstraints is BatchJobConstraints.
type JobConstraints struct {
	MaxWallClockTime  *Duration `json:"maxWallClockTime,omitempty"`
	MaxTaskRetryCount *int32    `json:"maxTaskRetryCount,omitempty"`
}

// JobManagerTask is BatchJobManagerTask.
type JobManagerTask struct {
	ID                           *string                       `json:"id" batch:"required"`
	DisplayName                  string                        `json:"displayName,omitempty"`
	CommandLine                  *string                       `json:"commandLine" batch:"required"`
	ContainerSettings            *ContainerSettings            `json:"containerSettings,omitempty"`
	ResourceFiles                []ResourceFile                `json:"resourceFiles,omitempty"`
	OutputFiles                  []OutputFile                  `json:"outputFiles,omitempty"`
	EnvironmentSettings          []EnvironmentSetting          `json:"environmentSettings,omitempty"`
	Constraints                  *TaskConstraints              `json:"constraints,omitempty"`
	RequiredSlots                *int32                        `json:"requiredSlots,omitempty"`
	KillJobOnCompletion          *bool                         `json:"killJobOnCompletion,omitempty"`
	UserIdentity                 *UserIdentity                 `json:"userIdentity,omitempty"`
	RunExclusive                 *bool                         `json:"runExclusive,omitempty"`
	ApplicationPackageReferences []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	AuthenticationTokenSettings  *AuthenticationTokenSettings  `json:"authenticationTokenSettings,omitempty"`
	AllowLowPriorityNode         *bool                         `json:"allowLowPriorityNode,omitempty"`
}

// JobPreparationTask is BatchJobPreparationTask.
type JobPreparationTask struct {
	ID                            string               `json:"id,omitempty"`
	CommandLine                   *string              `json:"commandLine" batch:"required"`
	ContainerSettings             *ContainerSettings   `json:"containerSettings,omitempty"`
	ResourceFiles                 []ResourceFile       `json:"resourceFiles,omitempty"`
	EnvironmentSettings           []EnvironmentSetting `json:"environmentSettings,omitempty"`
	Constraints                   *TaskConstraints     `json:"constraints,omitempty"`
	WaitForSuccess                *bool                `json:"waitForSuccess,omitempty"`
	UserIdentity                  *UserIdentity        `json:"userIdentity,omitempty"`
	RerunOnNodeRebootAfterSuccess *bool                `json:"rerunOnNodeRebootAfterSuccess,omitempty"`
}

// JobReleaseTask is BatchJobReleaseTask.
type JobReleaseTask struct {
	ID                  string               `json:"id,omitempty"`
	CommandLine         *string              `json:"commandLine" batch:"required"`
	ContainerSettings   *ContainerSettings   `json:"containerSettings,omitempty"`
	ResourceFiles       []ResourceFile       `json:"resourceFiles,omitempty"`
	EnvironmentSettings []EnvironmentSetting `json:"environmentSettings,omitempty"`
	MaxWallClockTime    *Duration            `json:"maxWallClockTime,omitempty"`
	RetentionTime       *Duration            `json:"retentionTime,omitempty"`
	UserIdentity        *UserIdentity        `json:"userIdentity,omitempty"`
}

// PoolInfo is BatchPoolInfo.
type PoolInfo struct {
	PoolID                string                 `json:"poolId,omitempty"`
	AutoPoolSpecification *AutoPoolSpecification `json:"autoPoolSpecification,omitempty"`
}

// AutoPoolSpecification is BatchAutoPoolSpecification.
type AutoPoolSpecification struct {
	AutoPoolIDPrefix   string             `json:"autoPoolIdPrefix,omitempty"`
	PoolLifetimeOption *PoolLifetime      `json:"poolLifetimeOption" batch:"required"`
	KeepAlive          *bool              `json:"keepAlive,omitempty"`
	Pool               *PoolSpecification `json:"pool,omitempty"`
}

// JobNetworkConfiguration is BatchJobNetworkConfiguration.
type JobNetworkConfiguration struct {
	SubnetID             *string `json:"subnetId" batch:"required"`
	SkipWithdrawFromVNet *bool   `json:"skipWithdrawFromVNet,omitempty"`
}

// JobCreate is BatchJobCreateOptions.
type JobCreate struct {
	ID                        *string                  `json:"id" batch:"required"`
	DisplayName               string                   `json:"displayName,omitempty"`
	UsesTaskDependencies      *bool                    `json:"usesTaskDependencies,omitempty"`
	Priority                  *int32                   `json:"priority,omitempty"`
	AllowTaskPreemption       *bool                    `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks          *int32                   `json:"maxParallelTasks,omitempty"`
	Constraints               *JobConstraints          `json:"constraints,omitempty"`
	JobManagerTask            *JobManagerTask          `json:"jobManagerTask,omitempty"`
	JobPreparationTask        *JobPreparationTask      `json:"jobPreparationTask,omitempty"`
	JobReleaseTask            *JobReleaseTask          `json:"jobReleaseTask,omitempty"`
	CommonEnvironmentSettings []EnvironmentSetting     `json:"commonEnvironmentSettings,omitempty"`
	PoolInfo                  *PoolInfo                `json:"poolInfo" batch:"required"`
	OnAllTasksComplete        AllTasksCompleteMode     `json:"onAllTasksComplete,omitempty"`
	OnTaskFailure             TaskFailureMode          `json:"onTaskFailure,omitempty"`
	NetworkConfiguration      *JobNetworkConfiguration `json:"networkConfiguration,omitempty"`
	Metadata                  []MetadataItem           `json:"metadata,omitempty"`
}

// JobUpdate is BatchJobUpdateOptions (PATCH). Replace (PUT) takes the same
// properties, omitted ones being reset to their defaults.
type JobUpdate struct {
	Priority             *int32               `json:"priority,omitempty"`
	AllowTaskPreemption  *bool                `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks     *int32               `json:"maxParallelTasks,omitempty"`
	Constraints          *JobConstraints      `json:"constraints,omitempty"`
	PoolInfo             *PoolInfo            `json:"poolInfo,omitempty"`
	OnAllTasksComplete   AllTasksCompleteMode `json:"onAllTasksComplete,omitempty"`
	Metadata             []MetadataItem       `json:"metadata,omitempty"`
	NetworkConfiguration json.RawMessage      `json:"networkConfiguration,omitempty"`
}

// JobDisable is BatchJobDisableOptions.
type JobDisable struct {
	DisableTasks *DisableJobOption `json:"disableTasks" batch:"required"`
}

// JobTerminate is BatchJobTerminateOptions.
type JobTerminate struct {
	TerminateReason string `json:"terminateReason,omitempty"`
}

// JobExecutionInfo is BatchJobExecutionInfo.
type JobExecutionInfo struct {
	StartTime       *Time            `json:"startTime"`
	EndTime         *Time            `json:"endTime,omitempty"`
	PoolID          string           `json:"poolId,omitempty"`
	SchedulingError *TaskFailureInfo `json:"schedulingError,omitempty"`
	TerminateReason string           `json:"terminateReason,omitempty"`
}

// Job is BatchJob.
type Job struct {
	ID                          string                   `json:"id,omitempty"`
	DisplayName                 string                   `json:"displayName,omitempty"`
	UsesTaskDependencies        *bool                    `json:"usesTaskDependencies,omitempty"`
	URL                         string                   `json:"url,omitempty"`
	ETag                        string                   `json:"eTag,omitempty"`
	LastModified                *Time                    `json:"lastModified,omitempty"`
	CreationTime                *Time                    `json:"creationTime,omitempty"`
	State                       JobState                 `json:"state,omitempty"`
	StateTransitionTime         *Time                    `json:"stateTransitionTime,omitempty"`
	PreviousState               JobState                 `json:"previousState,omitempty"`
	PreviousStateTransitionTime *Time                    `json:"previousStateTransitionTime,omitempty"`
	Priority                    *int32                   `json:"priority,omitempty"`
	AllowTaskPreemption         *bool                    `json:"allowTaskPreemption,omitempty"`
	MaxParallelTasks            *int32                   `json:"maxParallelTasks,omitempty"`
	Constraints                 *JobConstraints          `json:"constraints,omitempty"`
	JobManagerTask              *JobManagerTask          `json:"jobManagerTask,omitempty"`
	JobPreparationTask          *JobPreparationTask      `json:"jobPreparationTask,omitempty"`
	JobReleaseTask              *JobReleaseTask          `json:"jobReleaseTask,omitempty"`
	CommonEnvironmentSettings   []EnvironmentSetting     `json:"commonEnvironmentSettings,omitempty"`
	PoolInfo                    *PoolInfo                `json:"poolInfo,omitempty"`
	OnAllTasksComplete          AllTasksCompleteMode     `json:"onAllTasksComplete,omitempty"`
	OnTaskFailure               TaskFailureMode          `json:"onTaskFailure,omitempty"`
	NetworkConfiguration        *JobNetworkConfiguration `json:"networkConfiguration,omitempty"`
	Metadata                    []MetadataItem           `json:"metadata,omitempty"`
	ExecutionInfo               *JobExecutionInfo        `json:"executionInfo,omitempty"`
}

// ImageReference is BatchVmImageReference.
type ImageReference struct {
	Publisher               string `json:"publisher,omitempty"`
	Offer                   string `json:"offer,omitempty"`
	Sku                     string `json:"sku,omitempty"`
	Version                 string `json:"version,omitempty"`
	VirtualMachineImageID   string `json:"virtualMachineImageId,omitempty"`
	ExactVersion            string `json:"exactVersion,omitempty"`
	SharedGalleryImageID    string `json:"sharedGalleryImageId,omitempty"`
	CommunityGalleryImageID string `json:"communityGalleryImageId,omitempty"`
}

// ContainerConfiguration is BatchContainerConfiguration.
type ContainerConfiguration struct {
	Type                *ContainerType  `json:"type" batch:"required"`
	ContainerImageNames []string        `json:"containerImageNames,omitempty"`
	ContainerRegistries json.RawMessage `json:"containerRegistries,omitempty"`
}

// VirtualMachineConfiguration is VirtualMachineConfiguration.
type VirtualMachineConfiguration struct {
	ImageReference              *ImageReference         `json:"imageReference" batch:"required"`
	NodeAgentSKUID              *string                 `json:"nodeAgentSKUId" batch:"required"`
	WindowsConfiguration        json.RawMessage         `json:"windowsConfiguration,omitempty"`
	DataDisks                   json.RawMessage         `json:"dataDisks,omitempty"`
	LicenseType                 string                  `json:"licenseType,omitempty"`
	ContainerConfiguration      *ContainerConfiguration `json:"containerConfiguration,omitempty"`
	DiskEncryptionConfiguration json.RawMessage         `json:"diskEncryptionConfiguration,omitempty"`
	NodePlacementConfiguration  json.RawMessage         `json:"nodePlacementConfiguration,omitempty"`
	Extensions                  json.RawMessage         `json:"extensions,omitempty"`
	OSDisk                      json.RawMessage         `json:"osDisk,omitempty"`
	SecurityProfile             json.RawMessage         `json:"securityProfile,omitempty"`
	ServiceArtifactReference    json.RawMessage         `json:"serviceArtifactReference,omitempty"`
}

// StartTask is BatchStartTask.
type StartTask struct {
	CommandLine         *string              `json:"commandLine" batch:"required"`
	ContainerSettings   *ContainerSettings   `json:"containerSettings,omitempty"`
	ResourceFiles       []ResourceFile       `json:"resourceFiles,omitempty"`
	EnvironmentSettings []EnvironmentSetting `json:"environmentSettings,omitempty"`
	UserIdentity        *UserIdentity        `json:"userIdentity,omitempty"`
	MaxTaskRetryCount   *int32               `json:"maxTaskRetryCount,omitempty"`
	WaitForSuccess      *bool                `json:"waitForSuccess,omitempty"`
}

// TaskSchedulingPolicy is BatchTaskSchedulingPolicy.
type TaskSchedulingPolicy struct {
	JobDefaultOrder JobDefaultOrder `json:"jobDefaultOrder,omitempty"`
	NodeFillType    *NodeFillType   `json:"nodeFillType" batch:"required"`
}

// PoolSpecification is BatchPoolSpecification: a pool without an id, as
// in an auto pool.
type PoolSpecification struct {
	DisplayName                  string                        `json:"displayName,omitempty"`
	VMSize                       *string                       `json:"vmSize" batch:"required"`
	VirtualMachineConfiguration  *VirtualMachineConfiguration  `json:"virtualMachineConfiguration,omitempty"`
	TaskSlotsPerNode             *int32                        `json:"taskSlotsPerNode,omitempty"`
	TaskSchedulingPolicy         *TaskSchedulingPolicy         `json:"taskSchedulingPolicy,omitempty"`
	ResizeTimeout                *Duration                     `json:"resizeTimeout,omitempty"`
	TargetDedicatedNodes         *int32                        `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes       *int32                        `json:"targetLowPriorityNodes,omitempty"`
	EnableAutoScale              *bool                         `json:"enableAutoScale,omitempty"`
	AutoScaleFormula             string                        `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval  *Duration                     `json:"autoScaleEvaluationInterval,omitempty"`
	EnableInterNodeCommunication *bool                         `json:"enableInterNodeCommunication,omitempty"`
	NetworkConfiguration         json.RawMessage               `json:"networkConfiguration,omitempty"`
	StartTask                    *StartTask                    `json:"startTask,omitempty"`
	ApplicationPackageReferences []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	UserAccounts                 json.RawMessage               `json:"userAccounts,omitempty"`
	Metadata                     []MetadataItem                `json:"metadata,omitempty"`
	MountConfiguration           json.RawMessage               `json:"mountConfiguration,omitempty"`
	UpgradePolicy                json.RawMessage               `json:"upgradePolicy,omitempty"`
}

// PoolCreate is BatchPoolCreateOptions.
type PoolCreate struct {
	ID                           *string                       `json:"id" batch:"required"`
	DisplayName                  string                        `json:"displayName,omitempty"`
	VMSize                       *string                       `json:"vmSize" batch:"required"`
	VirtualMachineConfiguration  *VirtualMachineConfiguration  `json:"virtualMachineConfiguration,omitempty"`
	ResizeTimeout                *Duration                     `json:"resizeTimeout,omitempty"`
	TargetDedicatedNodes         *int32                        `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes       *int32                        `json:"targetLowPriorityNodes,omitempty"`
	EnableAutoScale              *bool                         `json:"enableAutoScale,omitempty"`
	AutoScaleFormula             string                        `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval  *Duration                     `json:"autoScaleEvaluationInterval,omitempty"`
	EnableInterNodeCommunication *bool                         `json:"enableInterNodeCommunication,omitempty"`
	NetworkConfiguration         json.RawMessage               `json:"networkConfiguration,omitempty"`
	StartTask                    *StartTask                    `json:"startTask,omitempty"`
	ApplicationPackageReferences []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	TaskSlotsPerNode             *int32                        `json:"taskSlotsPerNode,omitempty"`
	TaskSchedulingPolicy         *TaskSchedulingPolicy         `json:"taskSchedulingPolicy,omitempty"`
	UserAccounts                 json.RawMessage               `json:"userAccounts,omitempty"`
	Metadata                     []MetadataItem                `json:"metadata,omitempty"`
	MountConfiguration           json.RawMessage               `json:"mountConfiguration,omitempty"`
	UpgradePolicy                json.RawMessage               `json:"upgradePolicy,omitempty"`
}

// PoolResize is BatchPoolResizeOptions.
type PoolResize struct {
	TargetDedicatedNodes   *int32                 `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes *int32                 `json:"targetLowPriorityNodes,omitempty"`
	ResizeTimeout          *Duration              `json:"resizeTimeout,omitempty"`
	NodeDeallocationOption NodeDeallocationOption `json:"nodeDeallocationOption,omitempty"`
}

// PoolEnableAutoScale is BatchPoolEnableAutoScaleOptions.
type PoolEnableAutoScale struct {
	AutoScaleFormula            string    `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval *Duration `json:"autoScaleEvaluationInterval,omitempty"`
}

// PoolEvaluateAutoScale is BatchPoolEvaluateAutoScaleOptions.
type PoolEvaluateAutoScale struct {
	AutoScaleFormula *string `json:"autoScaleFormula" batch:"required"`
}

// AutoScaleRun is AutoScaleRun.
type AutoScaleRun struct {
	Timestamp *Time              `json:"timestamp"`
	Results   string             `json:"results,omitempty"`
	Error     *AutoScaleRunError `json:"error,omitempty"`
}

// AutoScaleRunError is AutoScaleRunError.
type AutoScaleRunError struct {
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
	Values  []NameValuePair `json:"values,omitempty"`
}

// PoolIdentity is BatchPoolIdentity.
type PoolIdentity struct {
	Type                   PoolIdentityType       `json:"type"`
	UserAssignedIdentities []UserAssignedIdentity `json:"userAssignedIdentities,omitempty"`
}

// UserAssignedIdentity is BatchUserAssignedIdentity.
type UserAssignedIdentity struct {
	ResourceID  string `json:"resourceId"`
	ClientID    string `json:"clientId,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
}

// Pool is BatchPool.
type Pool struct {
	ID                            string                        `json:"id,omitempty"`
	DisplayName                   string                        `json:"displayName,omitempty"`
	URL                           string                        `json:"url,omitempty"`
	ETag                          string                        `json:"eTag,omitempty"`
	LastModified                  *Time                         `json:"lastModified,omitempty"`
	CreationTime                  *Time                         `json:"creationTime,omitempty"`
	State                         PoolState                     `json:"state,omitempty"`
	StateTransitionTime           *Time                         `json:"stateTransitionTime,omitempty"`
	AllocationState               AllocationState               `json:"allocationState,omitempty"`
	AllocationStateTransitionTime *Time                         `json:"allocationStateTransitionTime,omitempty"`
	VMSize                        string                        `json:"vmSize,omitempty"`
	VirtualMachineConfiguration   *VirtualMachineConfiguration  `json:"virtualMachineConfiguration,omitempty"`
	ResizeTimeout                 *Duration                     `json:"resizeTimeout,omitempty"`
	CurrentDedicatedNodes         *int32                        `json:"currentDedicatedNodes,omitempty"`
	CurrentLowPriorityNodes       *int32                        `json:"currentLowPriorityNodes,omitempty"`
	TargetDedicatedNodes          *int32                        `json:"targetDedicatedNodes,omitempty"`
	TargetLowPriorityNodes        *int32                        `json:"targetLowPriorityNodes,omitempty"`
	EnableAutoScale               *bool                         `json:"enableAutoScale,omitempty"`
	AutoScaleFormula              string                        `json:"autoScaleFormula,omitempty"`
	AutoScaleEvaluationInterval   *Duration                     `json:"autoScaleEvaluationInterval,omitempty"`
	AutoScaleRun                  *AutoScaleRun                 `json:"autoScaleRun,omitempty"`
	EnableInterNodeCommunication  *bool                         `json:"enableInterNodeCommunication,omitempty"`
	NetworkConfiguration          json.RawMessage               `json:"networkConfiguration,omitempty"`
	StartTask                     *StartTask                    `json:"startTask,omitempty"`
	ApplicationPackageReferences  []ApplicationPackageReference `json:"applicationPackageReferences,omitempty"`
	TaskSlotsPerNode              *int32                        `json:"taskSlotsPerNode,omitempty"`
	TaskSchedulingPolicy          *TaskSchedulingPolicy         `json:"taskSchedulingPolicy,omitempty"`
	UserAccounts                  json.RawMessage               `json:"userAccounts,omitempty"`
	Metadata                      []MetadataItem                `json:"metadata,omitempty"`
	MountConfiguration            json.RawMessage               `json:"mountConfiguration,omitempty"`
	Identity                      *PoolIdentity                 `json:"identity,omitempty"`
	UpgradePolicy                 json.RawMessage               `json:"upgradePolicy,omitempty"`
}

// NodeFile is BatchNodeFile.
type NodeFile struct {
	Name        string          `json:"name,omitempty"`
	URL         string          `json:"url,omitempty"`
	IsDirectory *bool           `json:"isDirectory,omitempty"`
	Properties  *FileProperties `json:"properties,omitempty"`
}

// FileProperties is FileProperties. contentLength is an int64 carried as a
// string, as the spec declares it.
type FileProperties struct {
	CreationTime  *Time  `json:"creationTime,omitempty"`
	LastModified  *Time  `json:"lastModified"`
	ContentLength string `json:"contentLength"`
	ContentType   string `json:"contentType,omitempty"`
	FileMode      string `json:"fileMode,omitempty"`
}

// NodeFileList is BatchNodeFileListResult.
type NodeFileList struct {
	Value    []NodeFile `json:"value"`
	NextLink string     `json:"odata.nextLink,omitempty"`
}
