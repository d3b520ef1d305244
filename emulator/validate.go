package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Checks of values in request bodies, after decodeBody has checked their
// shape. Each names the property it rejects.

const (
	maxDisplayName   = 1024
	maxDependencyLen = 64000
	minResizeTimeout = 5 * 60 * ticksPerSecond
	maxJobPriority   = 1000
	maxSlotsPerNode  = 256
	maxPoolPackages  = 10
	maxReleaseTime   = 15 * ticksPerMinute
	// maxResourceFiles is the size of a resourceFiles list Batch takes.
	// Its spec says only that there is a maximum; the service's message
	// names it: "Total size of resourceFiles cannot be more than 32768
	// characters". The emulator counts the characters of the list's
	// JSON, as bmc does, which is at least what Batch counts.
	maxResourceFiles = 32768
)

func validID(path, id string) *apiError {
	if id == "" || len(id) > 64 {
		return errInvalidProperty(path, id, "an id must be 1 to 64 characters long")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return errInvalidProperty(path, id, "an id may contain only letters, digits, hyphens and underscores")
		}
	}
	return nil
}

func validDisplayName(path, s string) *apiError {
	if utf8.RuneCountInString(s) > maxDisplayName {
		return errInvalidProperty(path, s[:40]+"...", "the display name is longer than 1024 characters")
	}
	return nil
}

func nonEmpty(path string, s *string) *apiError {
	if s == nil || strings.TrimSpace(*s) == "" {
		return errInvalidProperty(path, "", "the value may not be empty")
	}
	return nil
}

func nonNegative(path string, d *Duration) *apiError {
	if d != nil && *d < 0 {
		return errInvalidProperty(path, d.String(), "the duration may not be negative")
	}
	return nil
}

func validTaskConstraints(path string, c *TaskConstraints) *apiError {
	if c == nil {
		return nil
	}
	if e := nonNegative(path+".maxWallClockTime", c.MaxWallClockTime); e != nil {
		return e
	}
	if e := nonNegative(path+".retentionTime", c.RetentionTime); e != nil {
		return e
	}
	if c.MaxTaskRetryCount != nil && *c.MaxTaskRetryCount < -1 {
		return errInvalidProperty(path+".maxTaskRetryCount", strconv.Itoa(int(*c.MaxTaskRetryCount)), "the value must be -1 (unlimited) or more")
	}
	return nil
}

func validEnv(path string, env []EnvironmentSetting) *apiError {
	for i, e := range env {
		p := fmt.Sprintf("%s[%d].name", path, i)
		if e := nonEmpty(p, e.Name); e != nil {
			return e
		}
		if strings.Contains(*e.Name, "=") {
			return errInvalidProperty(p, *e.Name, "an environment variable name may not contain '='")
		}
	}
	return nil
}

func validMetadata(path string, md []MetadataItem) *apiError {
	for i, m := range md {
		if m.Name == nil || *m.Name == "" {
			return newError(http.StatusBadRequest, "EmptyMetadataKey", "A metadata item has an empty name.").
				with("PropertyName", fmt.Sprintf("%s[%d].name", path, i))
		}
	}
	return nil
}

// relativePath checks a file path that must stay inside the working
// directory.
func relativePath(p, v string) *apiError {
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "/") || strings.Contains(v, `\`) {
		return errInvalidProperty(p, v, "the file path must be relative to the task's working directory")
	}
	c := path.Clean(v)
	if c == ".." || strings.HasPrefix(c, "../") {
		return errInvalidProperty(p, v, "the file path may not leave the task's working directory")
	}
	return nil
}

func validURL(p, raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
		return errInvalidProperty(p, redactedURL(raw), "the value must be an absolute http or https URL")
	}
	return nil
}

// errResourceFilesTooLarge is Batch's answer to a resourceFiles list over
// its size limit.
func errResourceFilesTooLarge(path string, n int) *apiError {
	return newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		"The resource files of the task are %d characters; the maximum size of the list is %d. Reduce the collection of resource files: use .zip files, application packages or containers.", n, maxResourceFiles).
		with("PropertyName", path).
		with("Reason", fmt.Sprintf("Total size of resourceFiles cannot be more than %d characters", maxResourceFiles))
}

// resourceFilesSize is the size of a resourceFiles list: the characters
// of its JSON, written as a client writes it (no HTML escapes).
func resourceFilesSize(rfs []ResourceFile) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rfs); err != nil {
		return math.MaxInt
	}
	return utf8.RuneCount(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func validResourceFiles(path string, rfs []ResourceFile) *apiError {
	if len(rfs) == 0 {
		return nil
	}
	if n := resourceFilesSize(rfs); n > maxResourceFiles {
		return errResourceFilesTooLarge(path, n)
	}
	for i, rf := range rfs {
		p := fmt.Sprintf("%s[%d]", path, i)
		n := 0
		for _, set := range []bool{rf.AutoStorageContainerName != "", rf.StorageContainerURL != "", rf.HTTPURL != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			return errInvalidProperty(p, "", "exactly one of autoStorageContainerName, storageContainerUrl and httpUrl must be specified")
		}
		if rf.HTTPURL != "" {
			if e := validURL(p+".httpUrl", rf.HTTPURL); e != nil {
				return e
			}
			if rf.FilePath == "" {
				return errMissingProperty(p + ".filePath")
			}
			if rf.BlobPrefix != "" {
				return errInvalidProperty(p+".blobPrefix", rf.BlobPrefix, "blobPrefix applies only to autoStorageContainerName and storageContainerUrl")
			}
		}
		if rf.StorageContainerURL != "" {
			if e := validURL(p+".storageContainerUrl", rf.StorageContainerURL); e != nil {
				return e
			}
		}
		if e := relativePath(p+".filePath", rf.FilePath); e != nil {
			return e
		}
		if rf.FileMode != "" {
			if _, err := strconv.ParseUint(rf.FileMode, 8, 32); err != nil {
				return errInvalidProperty(p+".fileMode", rf.FileMode, "the file mode must be an octal number such as 0770")
			}
		}
	}
	return nil
}

func validOutputFiles(path string, ofs []OutputFile) *apiError {
	for i, of := range ofs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if e := nonEmpty(p+".filePattern", of.FilePattern); e != nil {
			return e
		}
		if of.Destination.Container == nil {
			return errMissingProperty(p + ".destination.container")
		}
		if e := validURL(p+".destination.container.containerUrl", *of.Destination.Container.ContainerURL); e != nil {
			return e
		}
		for k, h := range of.Destination.Container.UploadHeaders {
			if e := nonEmpty(fmt.Sprintf("%s.destination.container.uploadHeaders[%d].name", p, k), h.Name); e != nil {
				return e
			}
		}
	}
	return nil
}

func validPackages(path string, refs []ApplicationPackageReference) *apiError {
	for i, r := range refs {
		if e := nonEmpty(fmt.Sprintf("%s[%d].applicationId", path, i), r.ApplicationID); e != nil {
			return e
		}
	}
	return nil
}

// validTask checks a task to be added to j; p prefixes property names
// (the item of an add-collection request).
func validTask(j *job, t *TaskCreate, p string) *apiError {
	if e := validID(p+"id", *t.ID); e != nil {
		return e
	}
	if e := validDisplayName(p+"displayName", t.DisplayName); e != nil {
		return e
	}
	if e := nonEmpty(p+"commandLine", t.CommandLine); e != nil {
		return e
	}
	if t.RequiredSlots != nil && *t.RequiredSlots < 1 {
		return errInvalidProperty(p+"requiredSlots", strconv.Itoa(int(*t.RequiredSlots)), "a task needs at least one slot")
	}
	if e := validTaskConstraints(p+"constraints", t.Constraints); e != nil {
		return e
	}
	if e := validResourceFiles(p+"resourceFiles", t.ResourceFiles); e != nil {
		return e
	}
	if e := validOutputFiles(p+"outputFiles", t.OutputFiles); e != nil {
		return e
	}
	if e := validEnv(p+"environmentSettings", t.EnvironmentSettings); e != nil {
		return e
	}
	if e := validPackages(p+"applicationPackageReferences", t.ApplicationPackageReferences); e != nil {
		return e
	}
	if m := t.MultiInstanceSettings; m != nil {
		if t.RequiredSlots != nil && *t.RequiredSlots != 1 {
			return errInvalidProperty(p+"requiredSlots", strconv.Itoa(int(*t.RequiredSlots)), "a multi-instance task must require exactly one slot")
		}
		if e := validResourceFiles(p+"multiInstanceSettings.commonResourceFiles", m.CommonResourceFiles); e != nil {
			return e
		}
	}
	if ec := t.ExitConditions; ec != nil {
		if e := validExitConditions(j, p+"exitConditions", ec); e != nil {
			return e
		}
	}
	if d := t.DependsOn; d != nil && (len(d.TaskIDs) > 0 || len(d.TaskIDRanges) > 0) {
		if j.wire.UsesTaskDependencies == nil || !*j.wire.UsesTaskDependencies {
			return errConflict("TaskDependenciesNotSpecifiedOnJob",
				"The task has dependencies, but its job was not created with usesTaskDependencies set to true.")
		}
		total := 0
		for i, id := range d.TaskIDs {
			if e := validID(fmt.Sprintf("%sdependsOn.taskIds[%d]", p, i), id); e != nil {
				return e
			}
			if strings.EqualFold(id, *t.ID) {
				return errInvalidProperty(fmt.Sprintf("%sdependsOn.taskIds[%d]", p, i), id, "a task cannot depend on itself")
			}
			total += len(id)
		}
		if total > maxDependencyLen {
			return newError(http.StatusBadRequest, "TaskDependencyListTooLong",
				"The task's dependencies are too long: the ids total %d characters; the limit is %d. Use taskIdRanges.", total, maxDependencyLen)
		}
		self, isInt := taskInt(*t.ID)
		for i, r := range d.TaskIDRanges {
			if *r.Start > *r.End {
				return errInvalidProperty(fmt.Sprintf("%sdependsOn.taskIdRanges[%d]", p, i),
					fmt.Sprintf("%d-%d", *r.Start, *r.End), "the start of a range must not be after its end")
			}
			if isInt && int64(*r.Start) <= self && self <= int64(*r.End) {
				return errInvalidProperty(fmt.Sprintf("%sdependsOn.taskIdRanges[%d]", p, i),
					fmt.Sprintf("%d-%d", *r.Start, *r.End), "a task cannot depend on itself")
			}
		}
	}
	return nil
}

func validExitConditions(j *job, p string, ec *ExitConditions) *apiError {
	check := func(path string, o *ExitOptions) *apiError {
		if o != nil && o.JobAction != "" && j.wire.OnTaskFailure != FailurePerformJobAction {
			return errInvalidProperty(path+".jobAction", string(o.JobAction),
				"jobAction may be set only when the job's onTaskFailure is performexitoptionsjobaction")
		}
		return nil
	}
	for i, m := range ec.ExitCodes {
		if e := check(fmt.Sprintf("%s.exitCodes[%d].exitOptions", p, i), m.ExitOptions); e != nil {
			return e
		}
	}
	for i, m := range ec.ExitCodeRanges {
		if *m.Start > *m.End {
			return errInvalidProperty(fmt.Sprintf("%s.exitCodeRanges[%d]", p, i), fmt.Sprintf("%d-%d", *m.Start, *m.End),
				"the start of a range must not be after its end")
		}
		if e := check(fmt.Sprintf("%s.exitCodeRanges[%d].exitOptions", p, i), m.ExitOptions); e != nil {
			return e
		}
	}
	for _, x := range []struct {
		name string
		o    *ExitOptions
	}{{"preProcessingError", ec.PreProcessingError}, {"fileUploadError", ec.FileUploadError}, {"default", ec.Default}} {
		if e := check(p+"."+x.name, x.o); e != nil {
			return e
		}
	}
	return nil
}

func validJobManager(p string, m *JobManagerTask) *apiError {
	if e := validID(p+".id", *m.ID); e != nil {
		return e
	}
	if e := validDisplayName(p+".displayName", m.DisplayName); e != nil {
		return e
	}
	if e := nonEmpty(p+".commandLine", m.CommandLine); e != nil {
		return e
	}
	if m.RequiredSlots != nil && *m.RequiredSlots < 1 {
		return errInvalidProperty(p+".requiredSlots", strconv.Itoa(int(*m.RequiredSlots)), "a task needs at least one slot")
	}
	if e := validTaskConstraints(p+".constraints", m.Constraints); e != nil {
		return e
	}
	if e := validResourceFiles(p+".resourceFiles", m.ResourceFiles); e != nil {
		return e
	}
	if e := validOutputFiles(p+".outputFiles", m.OutputFiles); e != nil {
		return e
	}
	if e := validEnv(p+".environmentSettings", m.EnvironmentSettings); e != nil {
		return e
	}
	return validPackages(p+".applicationPackageReferences", m.ApplicationPackageReferences)
}

func validJobConstraints(p string, c *JobConstraints) *apiError {
	if c == nil {
		return nil
	}
	if e := nonNegative(p+".maxWallClockTime", c.MaxWallClockTime); e != nil {
		return e
	}
	if c.MaxTaskRetryCount != nil && *c.MaxTaskRetryCount < -1 {
		return errInvalidProperty(p+".maxTaskRetryCount", strconv.Itoa(int(*c.MaxTaskRetryCount)), "the value must be -1 (unlimited) or more")
	}
	return nil
}

func validPriority(p string, v *int32) *apiError {
	if v != nil && (*v < -maxJobPriority || *v > maxJobPriority) {
		return errInvalidProperty(p, strconv.Itoa(int(*v)), "the priority must be between -1000 and 1000")
	}
	return nil
}

func validMaxParallel(p string, v *int32) *apiError {
	if v != nil && *v != -1 && *v < 1 {
		return errInvalidProperty(p, strconv.Itoa(int(*v)), "maxParallelTasks must be -1 or greater than 0")
	}
	return nil
}

func (s *Server) validJob(jc *JobCreate) *apiError {
	if e := validID("id", *jc.ID); e != nil {
		return e
	}
	if e := validDisplayName("displayName", jc.DisplayName); e != nil {
		return e
	}
	if e := validPriority("priority", jc.Priority); e != nil {
		return e
	}
	if e := validMaxParallel("maxParallelTasks", jc.MaxParallelTasks); e != nil {
		return e
	}
	if e := validJobConstraints("constraints", jc.Constraints); e != nil {
		return e
	}
	pi := jc.PoolInfo
	switch {
	case pi.PoolID != "" && pi.AutoPoolSpecification != nil, pi.PoolID == "" && pi.AutoPoolSpecification == nil:
		return errInvalidProperty("poolInfo", "", "exactly one of poolId and autoPoolSpecification must be specified")
	case pi.PoolID != "":
		if e := validID("poolInfo.poolId", pi.PoolID); e != nil {
			return e
		}
	default:
		ap := pi.AutoPoolSpecification
		if *ap.PoolLifetimeOption != "job" {
			return errInvalidProperty("poolInfo.autoPoolSpecification.poolLifetimeOption", string(*ap.PoolLifetimeOption),
				"a job's auto pool must have the lifetime of the job; jobschedule applies to job schedules")
		}
		if len(ap.AutoPoolIDPrefix) > 20 {
			return errInvalidProperty("poolInfo.autoPoolSpecification.autoPoolIdPrefix", ap.AutoPoolIDPrefix, "the prefix may be at most 20 characters")
		}
		if ap.AutoPoolIDPrefix != "" {
			if e := validID("poolInfo.autoPoolSpecification.autoPoolIdPrefix", ap.AutoPoolIDPrefix); e != nil {
				return e
			}
		}
		if ap.Pool == nil {
			return errMissingProperty("poolInfo.autoPoolSpecification.pool")
		}
		if e := s.validPoolSpec("poolInfo.autoPoolSpecification.pool.", ap.Pool); e != nil {
			return e
		}
	}
	if m := jc.JobManagerTask; m != nil {
		if e := validJobManager("jobManagerTask", m); e != nil {
			return e
		}
	}
	if jp := jc.JobPreparationTask; jp != nil {
		if jp.ID != "" {
			if e := validID("jobPreparationTask.id", jp.ID); e != nil {
				return e
			}
		}
		if e := nonEmpty("jobPreparationTask.commandLine", jp.CommandLine); e != nil {
			return e
		}
	}
	if jr := jc.JobReleaseTask; jr != nil {
		if jc.JobPreparationTask == nil {
			return errInvalidProperty("jobReleaseTask", "", "a job release task needs a job preparation task")
		}
		if jr.ID != "" {
			if e := validID("jobReleaseTask.id", jr.ID); e != nil {
				return e
			}
		}
		if e := nonEmpty("jobReleaseTask.commandLine", jr.CommandLine); e != nil {
			return e
		}
		if d := jr.MaxWallClockTime; d != nil && (*d < 0 || int64(*d) > maxReleaseTime) {
			return errInvalidProperty("jobReleaseTask.maxWallClockTime", d.String(), "the value must be between 0 and 15 minutes")
		}
	}
	if e := validEnv("commonEnvironmentSettings", jc.CommonEnvironmentSettings); e != nil {
		return e
	}
	return validMetadata("metadata", jc.Metadata)
}

// validPoolSpec checks what a pool and an auto pool specification share.
func (s *Server) validPoolSpec(p string, ps *PoolSpecification) *apiError {
	if e := nonEmpty(p+"vmSize", ps.VMSize); e != nil {
		return e
	}
	if ps.VirtualMachineConfiguration == nil {
		return errMissingProperty(p + "virtualMachineConfiguration")
	}
	vm := ps.VirtualMachineConfiguration
	if e := nonEmpty(p+"virtualMachineConfiguration.nodeAgentSKUId", vm.NodeAgentSKUID); e != nil {
		return e
	}
	img := vm.ImageReference
	if img.VirtualMachineImageID == "" && img.SharedGalleryImageID == "" && img.CommunityGalleryImageID == "" &&
		(img.Publisher == "" || img.Offer == "" || img.Sku == "") {
		return errInvalidProperty(p+"virtualMachineConfiguration.imageReference", "",
			"give publisher, offer and sku, or an image id")
	}
	auto := ps.EnableAutoScale != nil && *ps.EnableAutoScale
	if auto {
		if ps.TargetDedicatedNodes != nil || ps.TargetLowPriorityNodes != nil {
			return errInvalidProperty(p+"targetDedicatedNodes", "", "targetDedicatedNodes and targetLowPriorityNodes may not be set when enableAutoScale is true")
		}
		if strings.TrimSpace(ps.AutoScaleFormula) == "" {
			return errMissingProperty(p + "autoScaleFormula")
		}
		if e := validInterval(p+"autoScaleEvaluationInterval", ps.AutoScaleEvaluationInterval); e != nil {
			return e
		}
	} else {
		if ps.TargetDedicatedNodes == nil && ps.TargetLowPriorityNodes == nil {
			return errMissingProperty(p + "targetDedicatedNodes")
		}
		if ps.AutoScaleFormula != "" {
			return errInvalidProperty(p+"autoScaleFormula", "", "autoScaleFormula may be set only when enableAutoScale is true")
		}
		if e := nodeCounts(p, ps.TargetDedicatedNodes, ps.TargetLowPriorityNodes); e != nil {
			return e
		}
	}
	if d := ps.ResizeTimeout; d != nil && int64(*d) < minResizeTimeout {
		return errInvalidProperty(p+"resizeTimeout", d.String(), "the resize timeout must be at least 5 minutes")
	}
	if v := ps.TaskSlotsPerNode; v != nil && (*v < 1 || *v > maxSlotsPerNode) {
		return errInvalidProperty(p+"taskSlotsPerNode", strconv.Itoa(int(*v)), "taskSlotsPerNode must be between 1 and 256")
	}
	if st := ps.StartTask; st != nil {
		if e := nonEmpty(p+"startTask.commandLine", st.CommandLine); e != nil {
			return e
		}
	}
	if len(ps.ApplicationPackageReferences) > maxPoolPackages {
		return errInvalidProperty(p+"applicationPackageReferences", "", "a pool may reference at most 10 packages")
	}
	for i, ref := range ps.ApplicationPackageReferences {
		if e := nonEmpty(fmt.Sprintf("%sapplicationPackageReferences[%d].applicationId", p, i), ref.ApplicationID); e != nil {
			return e
		}
		if !armApplicationID(*ref.ApplicationID) {
			return errConflict("InvalidApplicationPackageReferences",
				"One or more of the specified application package references are invalid.").
				with("ApplicationId", *ref.ApplicationID).
				with("Reason", "On a pool, the application id must be fully qualified: /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Batch/batchAccounts/{accountName}/applications/{applicationName}.")
		}
		if _, _, ok := s.findPackage(appName(*ref.ApplicationID), ref.Version); !ok {
			return errConflict("InvalidApplicationPackageReferences",
				"One or more of the specified application package references are invalid.").
				with("ApplicationId", *ref.ApplicationID).with("Version", ref.Version)
		}
	}
	return validMetadata(p+"metadata", ps.Metadata)
}

// armApplicationID reports whether id is an application's ARM resource
// id, the only form a pool's package reference takes (a task's takes the
// plain application id).
func armApplicationID(id string) bool {
	segs := strings.Split(id, "/")
	want := []string{"", "subscriptions", "", "resourcegroups", "", "providers", "microsoft.batch", "batchaccounts", "", "applications", ""}
	if len(segs) != len(want) {
		return false
	}
	for i, w := range want {
		if i > 0 && w == "" && segs[i] == "" || w != "" && !strings.EqualFold(segs[i], w) {
			return false
		}
	}
	return segs[0] == ""
}

func validInterval(p string, d *Duration) *apiError {
	if d == nil {
		return nil
	}
	if *d < 5*Duration(ticksPerMinute) || *d > 168*Duration(ticksPerHour) {
		return errInvalidProperty(p, d.String(), "the interval must be between 5 minutes and 168 hours")
	}
	return nil
}

func nodeCounts(p string, dedicated, lowPriority *int32) *apiError {
	for _, x := range []struct {
		name string
		v    *int32
	}{{"targetDedicatedNodes", dedicated}, {"targetLowPriorityNodes", lowPriority}} {
		if x.v != nil && *x.v < 0 {
			return errInvalidProperty(p+x.name, strconv.Itoa(int(*x.v)), "the node count may not be negative")
		}
	}
	return nil
}
