// Package nlb deploys certificates to Alibaba Cloud Network Load Balancer
// (NLB) TCPSSL listeners (CloudName "aliyun", CloudProduct "NLB"): the
// certificate is uploaded once to the account's certificate service (CAS)
// and bound by its CertificateId as the listener's default certificate
// (Config DefaultResource=true; UpdateListenerAttribute CertificateIds.1)
// or as an additional certificate serving the resource's Domain
// (AssociateAdditionalCertificatesWithListener), replacing only what served
// that domain. It is ALB's deployer (aliyun/alb) over NLB's API.
//
// It is not a load-balancer manager: it changes certificate bindings only.
package nlb

import (
	"fmt"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/alb"
)

// Description is aliyun/NLB's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "NLB",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to a Network Load Balancer TCPSSL listener (RegionId, ListenerId): its default certificate or the additional certificate serving Domain.",
	Config:       []deploy.Field{aliyun.FieldDefaultResource, aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// Variant is NLB (2022-04-30) for the ALB deployer.
var Variant = alb.Variant{Description: Description, API: aliyun.NLB, Protocol: "TCPSSL",
	Param: func(action string, i int) string {
		if action == "UpdateListenerAttribute" {
			return fmt.Sprintf("CertificateIds.%d", i)
		}
		return fmt.Sprintf("AdditionalCertificateIds.%d", i)
	}}

// New returns an NLB deployer over hub.
func New(hub *aliyun.Hub) *alb.Deployer { return alb.NewVariant(hub, Variant) }
