package api

import "strconv"

// routes is the table of every action this front serves.
func (a *API) routes() map[string]handler {
	return map[string]handler{
		// Certificates.
		"UploadUserCertificate":    a.uploadUserCertificate,
		"ListUserCertificateOrder": a.listUserCertificateOrder,
		"GetUserCertificateDetail": a.getUserCertificateDetail,
		"DeleteUserCertificate":    a.deleteUserCertificate,
		// Credentials, resources, contacts.
		"CreateCloudAccess":           a.createCloudAccess,
		"DeleteCloudAccess":           a.deleteCloudAccess,
		"ListCloudAccess":             a.listCloudAccess,
		"CreateCloudResource":         a.createCloudResource,
		"UpdateCloudResource":         a.updateCloudResource,
		"DeleteCloudResource":         a.deleteCloudResource,
		"ListCloudResources":          a.listCloudResources,
		"DescribeCloudResourceStatus": a.describeCloudResourceStatus,
		"CheckCloudResource":          a.checkCloudResource, // certfleet's own
		"SyncCloudResources":          a.syncCloudResources, // certfleet's own
		"ListCloudProducts":           a.listCloudProducts,  // certfleet's own
		"CreateContact":               a.createContact,
		"UpdateContact":               a.updateContact,
		"DeleteContact":               a.deleteContact,
		"ListContact":                 a.listContact,
		// Deployment jobs and their workers.
		"CreateDeploymentJob":         a.createDeploymentJob,
		"UpdateDeploymentJob":         a.updateDeploymentJob,
		"UpdateDeploymentJobStatus":   a.updateDeploymentJobStatus,
		"DeleteDeploymentJob":         a.deleteDeploymentJob,
		"DescribeDeploymentJob":       a.describeDeploymentJob,
		"DescribeDeploymentJobStatus": a.describeDeploymentJobStatus,
		"ListDeploymentJob":           a.listDeploymentJob,
		"ListDeploymentJobCert":       a.listDeploymentJobCert,
		"ListDeploymentJobResource":   a.listDeploymentJobResource,
		"ListWorkerResource":          a.listWorkerResource,
		"UpdateWorkerResourceStatus":  a.updateWorkerResourceStatus,
		"DeleteWorkerResource":        a.deleteWorkerResource,
		"PreviewDeploymentJob":        a.previewDeploymentJob,  // certfleet's own
		"CancelDeploymentJob":         a.cancelDeploymentJob,   // certfleet's own: jobcontrol.go
		"RetryDeploymentJob":          a.retryDeploymentJob,    // certfleet's own: jobcontrol.go
		"RollbackDeploymentJob":       a.rollbackDeploymentJob, // certfleet's own: jobcontrol.go
		"ListNotification":            a.listNotification,      // certfleet's own
		"LookupAuditEvents":           a.lookupAuditEvents,     // certfleet's own: audit.go
		// Certificate applications over ACME (issue 20): issuance.go, csr.go.
		"CreateIssuer":                           a.createIssuer, // certfleet's own
		"ListIssuers":                            a.listIssuers,  // certfleet's own
		"DeleteIssuer":                           a.deleteIssuer, // certfleet's own
		"CreateCertificateRequest":               a.createCertificateRequest,
		"CreateCertificateWithCsrRequest":        a.createCertificateWithCsrRequest,
		"CreateCertificateForPackageRequest":     a.createCertificateForPackageRequest,
		"DescribeCertificateState":               a.describeCertificateState,
		"DeleteCertificateRequest":               a.deleteCertificateRequest,
		"CancelOrderRequest":                     a.cancelOrder,
		"CancelCertificateForPackageRequest":     a.cancelOrder,
		"RenewCertificateOrderForPackageRequest": a.renewCertificateOrderForPackageRequest,
		"DescribePackageState":                   a.describePackageState,
		"CreateCsr":                              a.createCsr,
		"UploadCsr":                              a.uploadCsr,
		"ListCsr":                                a.listCsr,
		"GetCsrDetail":                           a.getCsrDetail,
		"UpdateCsr":                              a.updateCsr,
		"DeleteCsr":                              a.deleteCsr,
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
