// Package dcdn deploys certificates to Alibaba Cloud DCDN (Dynamic Route
// for CDN) domains (CloudName "aliyun", CloudProduct "DCDN"): the
// certificate is uploaded once to the account's certificate service (CAS)
// and bound to the resource's Domain by its CertId
// (SetDcdnDomainSSLCertificate, CertType=cas), then read back. It is CDN's
// deployer (aliyun/cdn) over DCDN's API; DCDN has no batch call certfleet
// uses.
//
// It is not a DCDN client: it makes only the calls of its RAM policy.
package dcdn

import (
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/cdn"
)

// Description is aliyun/DCDN's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "DCDN",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to an Alibaba Cloud DCDN domain (the resource's Domain).",
	Config:       []deploy.Field{aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// Variant is DCDN (2018-01-15) for the CDN deployer.
var Variant = cdn.Variant{Description: Description, API: aliyun.DCDN, Describe: "DescribeDcdnDomainCertificateInfo",
	Set: "SetDcdnDomainSSLCertificate", List: "DescribeDcdnUserDomains"}

// New returns a DCDN deployer over hub.
func New(hub *aliyun.Hub) *cdn.Deployer { return cdn.NewVariant(hub, Variant) }
