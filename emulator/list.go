package emulator

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Listings: $filter, $select, maxresults (1..1000, default 1000) and
// paging through odata.nextLink, an absolute URL that repeats the request's
// query with a $skiptoken. Items are listed in creation order and the
// token is the creation sequence of the last item returned, so paging is
// stable while items are added or deleted.

const filterScanLimit = 100_000 // items one page may examine before returning what it has

// jsonNames are the top-level property names of a wire struct, plus
// "stats", which Batch returns only through $expand and the emulator never
// fills but which is still a property one may $select.
func jsonNames[T any]() map[string]string {
	t := reflect.TypeFor[T]()
	out := map[string]string{"stats": "stats"}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[strings.ToLower(name)] = name
		}
	}
	return out
}

var (
	taskFields = jsonNames[Task]()
	jobFields  = jsonNames[Job]()
	poolFields = jsonNames[Pool]()
)

// parseSelect reads $select: a comma-separated list of top-level
// properties; nil means all.
func parseSelect(c *call, valid map[string]string) (map[string]bool, *apiError) {
	raw := c.query.Get("$select")
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	sel := map[string]bool{}
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		name, ok := valid[strings.ToLower(f)]
		if !ok {
			return nil, errInvalidQuery("$select", raw, f+" is not a property of this resource")
		}
		sel[name] = true
	}
	return sel, nil
}

// applySelect zeroes the properties of the struct *v that sel leaves out.
func applySelect(v any, sel map[string]bool) {
	if sel == nil {
		return
	}
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if !sel[name] {
			rv.Field(i).SetZero()
		}
	}
}

// lister describes one kind of listed entity.
type lister[E, W any] struct {
	seq    func(E) int64
	gone   func(E) bool
	wire   func(E) *W
	render func(E) W
	fields map[string]string
	props  map[string]func(*W) value
}

func listPage[E, W any](c *call, items []E, l lister[E, W]) (*response, *apiError) {
	limit := 1000
	if v := c.query.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, errInvalidQuery("maxresults", v, "maxresults must be an integer from 1 to 1000")
		}
		limit = n
	}
	sel, e := parseSelect(c, l.fields)
	if e != nil {
		return nil, e
	}
	var f filterNode
	if raw := c.query.Get("$filter"); strings.TrimSpace(raw) != "" {
		var err error
		f, err = parseFilter(raw, func(p string) bool { _, ok := l.props[p]; return ok })
		if err != nil {
			return nil, errInvalidQuery("$filter", raw, err.Error())
		}
	}
	after := int64(-1)
	if v := c.query.Get("$skiptoken"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, errInvalidQuery("$skiptoken", v, "not a continuation token this emulator issued")
		}
		after = n
	}
	i := sort.Search(len(items), func(i int) bool { return l.seq(items[i]) > after })
	out := make([]W, 0, min(limit, len(items)-i))
	scanned, last := 0, after
	for ; i < len(items) && len(out) < limit && scanned < filterScanLimit; i++ {
		e := items[i]
		if l.gone != nil && l.gone(e) {
			continue
		}
		scanned++
		last = l.seq(e)
		if f != nil {
			w := l.wire(e)
			if !f.eval(func(p string) value { return l.props[p](w) }) {
				continue
			}
		}
		w := l.render(e)
		applySelect(&w, sel)
		out = append(out, w)
	}
	res := ListResult[W]{Value: out}
	for ; i < len(items); i++ {
		if l.gone == nil || !l.gone(items[i]) {
			res.NextLink = nextLinkString(c, strconv.FormatInt(last, 10))
			break
		}
	}
	return reply(http.StatusOK, res), nil
}

// nextLinkString is the request's URL with $skiptoken set to token.
func nextLinkString(c *call, token string) string {
	q := url.Values{}
	for k, v := range c.query {
		if k != "$skiptoken" {
			q[k] = v
		}
	}
	q.Set("$skiptoken", token)
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			// Names such as $filter stay as they are: clients sign the
			// decoded query and some compare links textually.
			b.WriteString(strings.ReplaceAll(url.QueryEscape(k), "%24", "$") + "=" + url.QueryEscape(v))
		}
	}
	return c.s.endpointURL() + c.r.URL.EscapedPath() + "?" + b.String()
}

// Filterable properties.

var taskProps = map[string]func(*Task) value{
	"id":                          func(t *Task) value { return str(t.ID) },
	"displayName":                 func(t *Task) value { return strOpt(t.DisplayName) },
	"state":                       func(t *Task) value { return str(string(t.State)) },
	"previousState":               func(t *Task) value { return strOpt(string(t.PreviousState)) },
	"creationTime":                func(t *Task) value { return timeVal(t.CreationTime) },
	"lastModified":                func(t *Task) value { return timeVal(t.LastModified) },
	"stateTransitionTime":         func(t *Task) value { return timeVal(t.StateTransitionTime) },
	"previousStateTransitionTime": func(t *Task) value { return timeVal(t.PreviousStateTransitionTime) },
	"commandLine":                 func(t *Task) value { return str(t.CommandLine) },
	"requiredSlots":               func(t *Task) value { return int32Val(t.RequiredSlots) },
	"executionInfo/exitCode": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return value{}
		}
		return int32Val(t.ExecutionInfo.ExitCode)
	},
	"executionInfo/retryCount": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return num(0)
		}
		return num(int64(t.ExecutionInfo.RetryCount))
	},
	"executionInfo/requeueCount": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return num(0)
		}
		return num(int64(t.ExecutionInfo.RequeueCount))
	},
	"executionInfo/result": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return value{}
		}
		return strOpt(string(t.ExecutionInfo.Result))
	},
	"executionInfo/startTime": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return value{}
		}
		return timeVal(t.ExecutionInfo.StartTime)
	},
	"executionInfo/endTime": func(t *Task) value {
		if t.ExecutionInfo == nil {
			return value{}
		}
		return timeVal(t.ExecutionInfo.EndTime)
	},
	"executionInfo/failureInfo/category": func(t *Task) value {
		if t.ExecutionInfo == nil || t.ExecutionInfo.FailureInfo == nil {
			return value{}
		}
		return str(string(t.ExecutionInfo.FailureInfo.Category))
	},
	"executionInfo/failureInfo/code": func(t *Task) value {
		if t.ExecutionInfo == nil || t.ExecutionInfo.FailureInfo == nil {
			return value{}
		}
		return strOpt(t.ExecutionInfo.FailureInfo.Code)
	},
	"nodeInfo/poolId": func(t *Task) value {
		if t.NodeInfo == nil {
			return value{}
		}
		return strOpt(t.NodeInfo.PoolID)
	},
	"nodeInfo/nodeId": func(t *Task) value {
		if t.NodeInfo == nil {
			return value{}
		}
		return strOpt(t.NodeInfo.NodeID)
	},
}

var jobProps = map[string]func(*Job) value{
	"id":                  func(j *Job) value { return str(j.ID) },
	"displayName":         func(j *Job) value { return strOpt(j.DisplayName) },
	"state":               func(j *Job) value { return str(string(j.State)) },
	"previousState":       func(j *Job) value { return strOpt(string(j.PreviousState)) },
	"priority":            func(j *Job) value { return int32Val(j.Priority) },
	"creationTime":        func(j *Job) value { return timeVal(j.CreationTime) },
	"lastModified":        func(j *Job) value { return timeVal(j.LastModified) },
	"stateTransitionTime": func(j *Job) value { return timeVal(j.StateTransitionTime) },
	"poolInfo/poolId":     func(j *Job) value { return strOpt(j.PoolInfo.PoolID) },
	"executionInfo/poolId": func(j *Job) value {
		if j.ExecutionInfo == nil {
			return value{}
		}
		return strOpt(j.ExecutionInfo.PoolID)
	},
	"executionInfo/startTime": func(j *Job) value {
		if j.ExecutionInfo == nil {
			return value{}
		}
		return timeVal(j.ExecutionInfo.StartTime)
	},
	"executionInfo/endTime": func(j *Job) value {
		if j.ExecutionInfo == nil {
			return value{}
		}
		return timeVal(j.ExecutionInfo.EndTime)
	},
	"executionInfo/terminateReason": func(j *Job) value {
		if j.ExecutionInfo == nil {
			return value{}
		}
		return strOpt(j.ExecutionInfo.TerminateReason)
	},
}

var poolProps = map[string]func(*Pool) value{
	"id":                      func(p *Pool) value { return str(p.ID) },
	"displayName":             func(p *Pool) value { return strOpt(p.DisplayName) },
	"state":                   func(p *Pool) value { return str(string(p.State)) },
	"allocationState":         func(p *Pool) value { return str(string(p.AllocationState)) },
	"vmSize":                  func(p *Pool) value { return str(p.VMSize) },
	"creationTime":            func(p *Pool) value { return timeVal(p.CreationTime) },
	"lastModified":            func(p *Pool) value { return timeVal(p.LastModified) },
	"stateTransitionTime":     func(p *Pool) value { return timeVal(p.StateTransitionTime) },
	"currentDedicatedNodes":   func(p *Pool) value { return int32Val(p.CurrentDedicatedNodes) },
	"currentLowPriorityNodes": func(p *Pool) value { return int32Val(p.CurrentLowPriorityNodes) },
	"targetDedicatedNodes":    func(p *Pool) value { return int32Val(p.TargetDedicatedNodes) },
	"targetLowPriorityNodes":  func(p *Pool) value { return int32Val(p.TargetLowPriorityNodes) },
	"taskSlotsPerNode":        func(p *Pool) value { return int32Val(p.TaskSlotsPerNode) },
	"enableAutoScale": func(p *Pool) value {
		if p.EnableAutoScale == nil {
			return boolean(false)
		}
		return boolean(*p.EnableAutoScale)
	},
}
