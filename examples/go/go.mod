module example.com/pay-sidecar-client

go 1.19
