package azurebatch

// Calls the backend needs beyond the first cut of the client: disabling a
// job, and authenticating with a fixed token (a job manager task's
// AZ_BATCH_AUTHENTICATION_TOKEN).

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// DisableJobOption is what Disable Job does to the job's running tasks.
// (BatchJobDisableOptions is not in the spec excerpt; spellings from the
// Batch REST reference for Job - Disable.)
type DisableJobOption string

// Disable options.
const (
	DisableRequeue   DisableJobOption = "requeue"
	DisableTerminate DisableJobOption = "terminate"
	DisableWait      DisableJobOption = "wait"
)

// BatchJobDisableOptions is the body of Disable Job.
type BatchJobDisableOptions struct {
	DisableTasks DisableJobOption `json:"disableTasks"`
}

// DisableJob disables a job (202): no new task of it starts, and its
// running tasks are requeued, terminated, or left to finish (wait).
func (c *Client) DisableJob(ctx context.Context, jobID string, option DisableJobOption) error {
	p, err := seg("job", jobID)
	if err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("disable job %q", jobID), "/jobs"+p+"/disable", nil, BatchJobDisableOptions{DisableTasks: option}, "")
}

// StaticTokenAuth authenticates with a bearer token given as is, such as
// the AZ_BATCH_AUTHENTICATION_TOKEN Batch gives a task whose
// authenticationTokenSettings ask for one.
func StaticTokenAuth(token string) Auth {
	return TokenAuth(staticToken(token))
}

type staticToken string

func (t staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(t), ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}
