// A client of pay-sidecar's internal API with Go's standard library: a deposit, a payout, two queries.
// SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var (
	api    = strings.TrimRight(envOr("SIDECAR_URL", "http://127.0.0.1:8080"), "/")
	token  = os.Getenv("PAYSIDECAR_API_TOKEN")
	client = &http.Client{Timeout: 30 * time.Second}
)

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// call returns the status and the decoded JSON (errors are application/problem+json with a stable "code").
func call(method, path string, body any) (int, map[string]any, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		reader = bytes.NewReader(data)
	}
	request, err := http.NewRequest(method, api+path, reader)
	if err != nil {
		return 0, nil, err
	}
	request.Header.Set("Accept", "application/json")
	if body != nil {
		request.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		request.Header.Set("Authorization", "Bearer "+token)
	}
	response, err := client.Do(request)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(response.Body).Decode(&answer); err != nil {
		return response.StatusCode, nil, err
	}
	return response.StatusCode, answer, nil
}

// create retries an unknown outcome with the SAME body: the sidecar journals every mrn, so it never pays twice.
func create(path string, body map[string]any) error {
	var status int
	var answer map[string]any
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		status, answer, err = call("POST", path, body)
		if err == nil && (status < 500 || answer["orderStatus"] != "unknown") {
			break
		}
		time.Sleep(time.Duration(1<<attempt) * time.Second)
	}
	if err != nil {
		return err
	}
	printed, _ := json.Marshal(answer)
	fmt.Printf("POST %s -> %d %s\n", path, status, printed)
	if status >= 300 {
		return fmt.Errorf("%v: %v", answer["code"], answer["detail"])
	}
	return nil
}

func main() {
	run := fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	// Amounts travel as strings or integers, never floats: "100.50" is signed exactly as written.
	steps := []struct {
		path string
		body map[string]any
	}{
		{"/v1/deposits", map[string]any{"mrn": "D-go-" + run, "amount": "100.50", "channelId": 2, "returnUrl": "https://shop.example/return"}},
		{"/v1/payouts", map[string]any{"mrn": "P-go-" + run, "amount": 500, "bankName": "中国工商银行", "accountName": "张三", "accountNumber": "6222020200112233445"}},
	}
	for _, step := range steps {
		if err := create(step.path, step.body); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, path := range []string{"/v1/deposits/D-go-" + run, "/v1/payouts/P-go-" + run} {
		status, answer, err := call("GET", path, nil)
		printed, _ := json.Marshal(answer)
		fmt.Printf("GET %s -> %d %s\n", path, status, printed)
		if err != nil || status != 200 {
			os.Exit(1)
		}
	}
}
