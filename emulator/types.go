package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// timeLayout is how Batch writes times: RFC 3339, UTC, seven fractional
// digits (.NET ticks).
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// Time is a date-time on the wire.
type Time struct{ time.Time }

func newTime(t time.Time) *Time { return &Time{t.UTC()} }

// MarshalJSON writes the time as Batch does.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(timeLayout) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v.UTC()
	return nil
}

// Duration is an ISO 8601 duration held in .NET ticks (100 ns), the unit
// Batch counts in: its "unlimited" value, TimeSpan.MaxValue, is far beyond
// what time.Duration can hold.
type Duration int64

const (
	ticksPerSecond = int64(10_000_000)
	ticksPerMinute = 60 * ticksPerSecond
	ticksPerHour   = 60 * ticksPerMinute
	ticksPerDay    = 24 * ticksPerHour

	// Unbounded is TimeSpan.MaxValue, which Batch reports for constraints
	// that have no limit: P10675199DT2H48M5.4775807S.
	Unbounded = Duration(math.MaxInt64)
)

func durationPtr(d Duration) *Duration { return &d }

// Std is d as a time.Duration; ok is false when d is unbounded or too
// large to represent, which callers treat as "no limit".
func (d Duration) Std() (time.Duration, bool) {
	if d < 0 || int64(d) > math.MaxInt64/100 {
		return 0, false
	}
	return time.Duration(int64(d) * 100), true
}

// String formats d the way .NET's XmlConvert does: P7D, PT1H30M, PT0.5S.
func (d Duration) String() string {
	t := int64(d)
	var b strings.Builder
	if t < 0 {
		b.WriteByte('-')
		if t == math.MinInt64 {
			t = math.MaxInt64 // off by one tick; never produced by the emulator
		} else {
			t = -t
		}
	}
	b.WriteByte('P')
	days := t / ticksPerDay
	t %= ticksPerDay
	if days > 0 {
		fmt.Fprintf(&b, "%dD", days)
	}
	if t == 0 {
		if days == 0 {
			b.WriteString("T0S")
		}
		return b.String()
	}
	b.WriteByte('T')
	if h := t / ticksPerHour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
	}
	t %= ticksPerHour
	if m := t / ticksPerMinute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
	}
	t %= ticksPerMinute
	if t > 0 {
		s, frac := t/ticksPerSecond, t%ticksPerSecond
		if frac == 0 {
			fmt.Fprintf(&b, "%dS", s)
		} else {
			f := strings.TrimRight(fmt.Sprintf("%07d", frac), "0")
			fmt.Fprintf(&b, "%d.%sS", s, f)
		}
	}
	return b.String()
}

// MarshalJSON writes d as an ISO 8601 string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads an ISO 8601 duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func (Duration) checkJSON(v any) string {
	s, ok := v.(string)
	if !ok {
		return "expected an ISO 8601 duration string"
	}
	if _, err := ParseDuration(s); err != nil {
		return err.Error()
	}
	return ""
}

// durationRE is compiled when first needed, not at the start of every bmc
// command, which links the emulator.
var durationRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)
})

var errDuration = errors.New("not a valid ISO 8601 duration")

// ParseDuration reads an ISO 8601 duration as .NET's XmlConvert does
// (a year is 365 days, a month 30), rejecting values beyond
// TimeSpan.MaxValue.
func ParseDuration(s string) (Duration, error) {
	m := durationRE().FindStringSubmatch(s)
	if m == nil || strings.HasSuffix(s, "P") || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is %w", s, errDuration)
	}
	total := new(big.Int)
	add := func(field string, unit int64) {
		if field == "" {
			return
		}
		n, _ := new(big.Int).SetString(field, 10)
		total.Add(total, n.Mul(n, big.NewInt(unit)))
	}
	add(m[2], 365*ticksPerDay)
	add(m[3], 30*ticksPerDay)
	add(m[4], 7*ticksPerDay)
	add(m[5], ticksPerDay)
	add(m[6], ticksPerHour)
	add(m[7], ticksPerMinute)
	if sec := m[8]; sec != "" {
		whole, frac, _ := strings.Cut(sec, ".")
		add(whole, ticksPerSecond)
		if len(frac) > 7 {
			frac = frac[:7]
		}
		if frac != "" {
			f, _ := strconv.ParseInt(frac+strings.Repeat("0", 7-len(frac)), 10, 64)
			total.Add(total, big.NewInt(f))
		}
	}
	if !total.IsInt64() {
		return 0, fmt.Errorf("%q is longer than the largest duration, %s", s, Unbounded)
	}
	v := total.Int64()
	if m[1] == "-" {
		v = -v
	}
	return Duration(v), nil
}

// Enumerations. Batch accepts an enum value in any case and writes the
// spelling of the spec, so each type normalises on the way in.

type enum interface{ enumValues() []string }

func decodeEnum(b []byte, dst *string, values []string) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for _, v := range values {
		if strings.EqualFold(v, s) {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(values, ", "))
}

func checkEnum(e enum, v any) string {
	s, ok := v.(string)
	if !ok {
		return "expected a string"
	}
	for _, x := range e.enumValues() {
		if strings.EqualFold(x, s) {
			return ""
		}
	}
	return "the value must be one of: " + strings.Join(e.enumValues(), ", ")
}

// TaskState is BatchTaskState.
type TaskState string

// Task states.
const (
	TaskActive    TaskState = "active"
	TaskPreparing TaskState = "preparing"
	TaskRunning   TaskState = "running"
	TaskCompleted TaskState = "completed"
)

func (TaskState) enumValues() []string {
	return []string{"active", "preparing", "running", "completed"}
}

// UnmarshalJSON normalises the spelling.
func (e *TaskState) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// JobState is BatchJobState.
type JobState string

// Job states.
const (
	JobActive      JobState = "active"
	JobDisabling   JobState = "disabling"
	JobDisabled    JobState = "disabled"
	JobEnabling    JobState = "enabling"
	JobTerminating JobState = "terminating"
	JobCompleted   JobState = "completed"
	JobDeleting    JobState = "deleting"
)

func (JobState) enumValues() []string {
	return []string{"active", "disabling", "disabled", "enabling", "terminating", "completed", "deleting"}
}

// UnmarshalJSON normalises the spelling.
func (e *JobState) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// PoolState is BatchPoolState.
type PoolState string

// Pool states.
const (
	PoolActive   PoolState = "active"
	PoolDeleting PoolState = "deleting"
)

func (PoolState) enumValues() []string { return []string{"active", "deleting"} }

// UnmarshalJSON normalises the spelling.
func (e *PoolState) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// AllocationState is AllocationState.
type AllocationState string

// Allocation states.
const (
	AllocationSteady   AllocationState = "steady"
	AllocationResizing AllocationState = "resizing"
	AllocationStopping AllocationState = "stopping"
)

func (AllocationState) enumValues() []string { return []string{"steady", "resizing", "stopping"} }

// UnmarshalJSON normalises the spelling.
func (e *AllocationState) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// TaskAddStatus is BatchTaskAddStatus.
type TaskAddStatus string

// Add-collection item outcomes.
const (
	AddSuccess     TaskAddStatus = "success"
	AddClientError TaskAddStatus = "clienterror"
	AddServerError TaskAddStatus = "servererror"
)

func (TaskAddStatus) enumValues() []string { return []string{"success", "clienterror", "servererror"} }

// UnmarshalJSON normalises the spelling.
func (e *TaskAddStatus) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// TaskResult is BatchTaskExecutionResult.
type TaskResult string

// Task results.
const (
	ResultSuccess TaskResult = "success"
	ResultFailure TaskResult = "failure"
)

func (TaskResult) enumValues() []string { return []string{"success", "failure"} }

// UnmarshalJSON normalises the spelling.
func (e *TaskResult) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// ErrorCategory is BatchErrorSourceCategory.
type ErrorCategory string

// Failure categories.
const (
	UserError   ErrorCategory = "usererror"
	ServerError ErrorCategory = "servererror"
)

func (ErrorCategory) enumValues() []string { return []string{"usererror", "servererror"} }

// UnmarshalJSON normalises the spelling.
func (e *ErrorCategory) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// AllTasksCompleteMode is BatchAllTasksCompleteMode.
type AllTasksCompleteMode string

// What to do when every task of a job has completed.
const (
	NoAction     AllTasksCompleteMode = "noaction"
	TerminateJob AllTasksCompleteMode = "terminatejob"
)

func (AllTasksCompleteMode) enumValues() []string { return []string{"noaction", "terminatejob"} }

// UnmarshalJSON normalises the spelling.
func (e *AllTasksCompleteMode) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// TaskFailureMode is BatchTaskFailureMode.
type TaskFailureMode string

// What to do when a task of a job fails.
const (
	FailureNoAction         TaskFailureMode = "noaction"
	FailurePerformJobAction TaskFailureMode = "performexitoptionsjobaction"
)

func (TaskFailureMode) enumValues() []string {
	return []string{"noaction", "performexitoptionsjobaction"}
}

// UnmarshalJSON normalises the spelling.
func (e *TaskFailureMode) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// JobAction is BatchJobActionKind.
type JobAction string

// Job actions of an exit condition.
const (
	JobActionNone      JobAction = "none"
	JobActionDisable   JobAction = "disable"
	JobActionTerminate JobAction = "terminate"
)

func (JobAction) enumValues() []string { return []string{"none", "disable", "terminate"} }

// UnmarshalJSON normalises the spelling.
func (e *JobAction) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// DependencyAction is DependencyAction.
type DependencyAction string

// Dependency actions of an exit condition.
const (
	Satisfy DependencyAction = "satisfy"
	Block   DependencyAction = "block"
)

func (DependencyAction) enumValues() []string { return []string{"satisfy", "block"} }

// UnmarshalJSON normalises the spelling.
func (e *DependencyAction) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// UploadCondition is OutputFileUploadCondition.
type UploadCondition string

// Output upload conditions.
const (
	UploadOnSuccess    UploadCondition = "tasksuccess"
	UploadOnFailure    UploadCondition = "taskfailure"
	UploadOnCompletion UploadCondition = "taskcompletion"
)

func (UploadCondition) enumValues() []string {
	return []string{"tasksuccess", "taskfailure", "taskcompletion"}
}

// UnmarshalJSON normalises the spelling.
func (e *UploadCondition) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// AccessScope is BatchAccessScope.
type AccessScope string

func (AccessScope) enumValues() []string { return []string{"job"} }

// UnmarshalJSON normalises the spelling.
func (e *AccessScope) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// AutoUserScope is AutoUserScope.
type AutoUserScope string

func (AutoUserScope) enumValues() []string { return []string{"task", "pool"} }

// UnmarshalJSON normalises the spelling.
func (e *AutoUserScope) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// ElevationLevel is ElevationLevel.
type ElevationLevel string

func (ElevationLevel) enumValues() []string { return []string{"nonadmin", "admin"} }

// UnmarshalJSON normalises the spelling.
func (e *ElevationLevel) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// ContainerWorkingDirectory is ContainerWorkingDirectory.
type ContainerWorkingDirectory string

func (ContainerWorkingDirectory) enumValues() []string {
	return []string{"taskWorkingDirectory", "containerImageDefault"}
}

// UnmarshalJSON normalises the spelling.
func (e *ContainerWorkingDirectory) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// ContainerHostDataPath is ContainerHostDataPath.
type ContainerHostDataPath string

func (ContainerHostDataPath) enumValues() []string {
	return []string{"Shared", "Startup", "VfsMounts", "Task", "JobPrep", "Applications"}
}

// UnmarshalJSON normalises the spelling.
func (e *ContainerHostDataPath) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// ContainerType is ContainerType.
type ContainerType string

func (ContainerType) enumValues() []string { return []string{"dockerCompatible", "criCompatible"} }

// UnmarshalJSON normalises the spelling.
func (e *ContainerType) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// PoolLifetime is BatchPoolLifetimeOption.
type PoolLifetime string

func (PoolLifetime) enumValues() []string { return []string{"jobschedule", "job"} }

// UnmarshalJSON normalises the spelling.
func (e *PoolLifetime) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// NodeFillType is BatchNodeFillType.
type NodeFillType string

// Node fill types.
const (
	FillSpread NodeFillType = "spread"
	FillPack   NodeFillType = "pack"
)

func (NodeFillType) enumValues() []string { return []string{"spread", "pack"} }

// UnmarshalJSON normalises the spelling.
func (e *NodeFillType) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// JobDefaultOrder is BatchJobDefaultOrder.
type JobDefaultOrder string

func (JobDefaultOrder) enumValues() []string { return []string{"none", "creationtime"} }

// UnmarshalJSON normalises the spelling.
func (e *JobDefaultOrder) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// NodeDeallocationOption is BatchNodeDeallocationOption; it also serves as
// DisableBatchJobOption (requeue, terminate, wait).
type NodeDeallocationOption string

// What becomes of running tasks on nodes leaving a pool.
const (
	DeallocRequeue        NodeDeallocationOption = "requeue"
	DeallocTerminate      NodeDeallocationOption = "terminate"
	DeallocTaskCompletion NodeDeallocationOption = "taskcompletion"
	DeallocRetainedData   NodeDeallocationOption = "retaineddata"
)

func (NodeDeallocationOption) enumValues() []string {
	return []string{"requeue", "terminate", "taskcompletion", "retaineddata"}
}

// UnmarshalJSON normalises the spelling.
func (e *NodeDeallocationOption) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// DisableJobOption is DisableBatchJobOption.
type DisableJobOption string

// What becomes of a disabled job's running tasks.
const (
	DisableRequeue   DisableJobOption = "requeue"
	DisableTerminate DisableJobOption = "terminate"
	DisableWait      DisableJobOption = "wait"
)

func (DisableJobOption) enumValues() []string { return []string{"requeue", "terminate", "wait"} }

// UnmarshalJSON normalises the spelling.
func (e *DisableJobOption) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}

// PoolIdentityType is BatchPoolIdentityType.
type PoolIdentityType string

func (PoolIdentityType) enumValues() []string { return []string{"UserAssigned", "None"} }

// UnmarshalJSON normalises the spelling.
func (e *PoolIdentityType) UnmarshalJSON(b []byte) error {
	return decodeEnum(b, (*string)(e), e.enumValues())
}
