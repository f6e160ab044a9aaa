// Command agent is a Go net/http agent for Rewind's end-to-end tests.
//
// It POSTs to https://api.openai.com/v1/chat/completions (or -base-url) with the
// standard library only: http.DefaultTransport honours HTTPS_PROXY, and crypto/x509
// reads SSL_CERT_FILE, so under `rewind record` the calls go through the recording proxy
// (Go never proxies loopback addresses, so a loopback -base-url is reached directly).
// It prints the same lines as tests/clients/py_openai_agent.py.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

const model = "gpt-4o-mini"

var tools = []any{map[string]any{
	"type": "function",
	"function": map[string]any{
		"name":        "get_weather",
		"description": "Get the current weather for a city.",
		"parameters": map[string]any{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string", "description": "The city name"}},
			"required":   []string{"city"},
		},
	},
}}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type toolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type message struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
}

type completion struct {
	Choices []struct {
		Message message `json:"message"`
		Delta   message `json:"delta"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// statusError is an HTTP error answer from the provider.
type statusError struct {
	status int
	kind   string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d %s", e.status, e.kind) }

type agent struct {
	client  *http.Client
	baseURL string
	apiKey  string
	suffix  string
}

func (a *agent) prompt(text string) string { return strings.TrimSpace(text + " " + a.suffix) }

func user(text string) map[string]any { return map[string]any{"role": "user", "content": text} }

// post sends one chat completions request and returns the open response body.
func (a *agent) post(body map[string]any) (io.ReadCloser, error) {
	payload, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", a.baseURL+"/chat/completions", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var failure struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&failure)
		return nil, &statusError{resp.StatusCode, failure.Error.Type}
	}
	return resp.Body, nil
}

func (a *agent) create(body map[string]any) (*completion, error) {
	reader, err := a.post(body)
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	var out completion
	return &out, json.NewDecoder(reader).Decode(&out)
}

// stream reads SSE lines until [DONE], handing each chunk to onChunk.
func (a *agent) stream(body map[string]any, onChunk func(*completion)) error {
	body["stream"] = true
	reader, err := a.post(body)
	if err != nil {
		return err
	}
	defer reader.Close()
	lines := bufio.NewScanner(reader)
	lines.Buffer(make([]byte, 1<<16), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		data := strings.TrimPrefix(line, "data: ")
		if data == line || data == "[DONE]" {
			continue
		}
		var chunk completion
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return err
		}
		onChunk(&chunk)
	}
	return lines.Err()
}

func showUsage(label string, u *usage) {
	fmt.Printf("%s usage: input=%d output=%d total=%d\n", label, u.PromptTokens, u.CompletionTokens, u.TotalTokens)
}

// show formats a JSON value like Python's json.dumps(value, sort_keys=True).
func show(value any) string {
	switch v := value.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = show(k) + ": " + show(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		out, _ := json.Marshal(v)
		return string(out)
	}
}

func getWeather(city string) map[string]any {
	return map[string]any{"city": city, "forecast": "sunny", "temp_c": 21}
}

func (a *agent) plain() error {
	reply, err := a.create(map[string]any{"model": model, "messages": []any{user(a.prompt("Say hello to Rewind."))}})
	if err != nil {
		return err
	}
	fmt.Printf("plain: %s\n", *reply.Choices[0].Message.Content)
	showUsage("plain", reply.Usage)
	return nil
}

func (a *agent) streamed() error {
	var text strings.Builder
	var last *usage
	body := map[string]any{
		"model":          model,
		"messages":       []any{user(a.prompt("Count from one to five."))},
		"stream_options": map[string]any{"include_usage": true},
	}
	err := a.stream(body, func(chunk *completion) {
		for _, choice := range chunk.Choices {
			if choice.Delta.Content != nil {
				text.WriteString(*choice.Delta.Content)
			}
		}
		if chunk.Usage != nil {
			last = chunk.Usage
		}
	})
	if err != nil {
		return err
	}
	fmt.Printf("stream: %s\n", text.String())
	showUsage("stream", last)
	return nil
}

func (a *agent) toolRoundTrip() error {
	messages := []any{user(a.prompt("What's the weather in Paris?"))}
	first, err := a.create(map[string]any{"model": model, "messages": messages, "tools": tools})
	if err != nil {
		return err
	}
	assistant := first.Choices[0].Message
	if len(assistant.ToolCalls) == 0 {
		return errors.New("no tool call")
	}
	call := assistant.ToolCalls[0]
	var args map[string]any
	if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil {
		return err
	}
	fmt.Printf("tool call: %s %s\n", call.Function.Name, show(args))
	city, _ := args["city"].(string)
	result := getWeather(city)
	fmt.Printf("tool result: %s\n", show(result))
	encoded, _ := json.Marshal(result)
	messages = append(messages, assistant, map[string]any{"role": "tool", "tool_call_id": call.ID, "content": string(encoded)})
	final, err := a.create(map[string]any{"model": model, "messages": messages, "tools": tools})
	if err != nil {
		return err
	}
	fmt.Printf("final: %s\n", *final.Choices[0].Message.Content)
	showUsage("final", final.Usage)
	return nil
}

func (a *agent) streamTool() error {
	var name, arguments strings.Builder
	body := map[string]any{"model": model, "messages": []any{user(a.prompt("What's the weather in Paris?"))}, "tools": tools}
	err := a.stream(body, func(chunk *completion) {
		for _, choice := range chunk.Choices {
			for _, call := range choice.Delta.ToolCalls {
				name.WriteString(call.Function.Name)
				arguments.WriteString(call.Function.Arguments)
			}
		}
	})
	if err != nil {
		return err
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(arguments.String()), &args); err != nil {
		return err
	}
	fmt.Printf("stream tool call: %s %s\n", name.String(), show(args))
	return nil
}

func describe(err error) string {
	var status *statusError
	if errors.As(err, &status) {
		return status.Error()
	}
	return "connection"
}

func main() {
	baseURL := flag.String("base-url", "https://api.openai.com/v1", "OpenAI API base URL")
	suffix := flag.String("suffix", "", "text appended to every prompt")
	sections := flag.String("sections", "plain,stream,tool,stream_tool", "sections to run")
	flag.Parse()
	a := &agent{
		client:  &http.Client{Timeout: 30 * time.Second},
		baseURL: strings.TrimRight(*baseURL, "/"),
		apiKey:  os.Getenv("OPENAI_API_KEY"),
		suffix:  *suffix,
	}
	steps := []struct {
		label string
		run   func() error
	}{{"plain", a.plain}, {"stream", a.streamed}, {"tool", a.toolRoundTrip}, {"stream_tool", a.streamTool}}
	failed := false
	for _, step := range steps {
		if !strings.Contains(","+*sections+",", ","+step.label+",") {
			continue
		}
		if err := step.run(); err != nil {
			fmt.Printf("%s error: %s\n", step.label, describe(err))
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
