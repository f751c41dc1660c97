// A client of pay-sidecar's internal API with the JDK 11+ HttpClient only: a deposit, a payout, two queries.
// SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
// Run as a single-file program: java Client.java
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

public class Client {
    static final String API = System.getenv().getOrDefault("SIDECAR_URL", "http://127.0.0.1:8080").replaceAll("/+$", "");
    static final String TOKEN = System.getenv("PAYSIDECAR_API_TOKEN");
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    static HttpResponse<String> call(String method, String path, String json) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(API + path))
            .timeout(Duration.ofSeconds(30))
            .header("Accept", "application/json");
        if (TOKEN != null && !TOKEN.isEmpty()) request.header("Authorization", "Bearer " + TOKEN);
        if (json == null) {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        } else {
            request.header("Content-Type", "application/json");
            request.method(method, HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8));
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }

    // An unknown outcome (problem+json with "orderStatus":"unknown") is retried with the SAME body:
    // the sidecar journals every mrn, so the retry can never pay twice.
    static void create(String path, String json) throws Exception {
        HttpResponse<String> response = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            response = call("POST", path, json);
            if (response.statusCode() < 500 || !response.body().contains("\"orderStatus\":\"unknown\"")) break;
            Thread.sleep(1000L << attempt);
        }
        System.out.println("POST " + path + " -> " + response.statusCode() + " " + response.body());
        if (response.statusCode() >= 300) throw new IllegalStateException("refused: " + response.body());
    }

    public static void main(String[] args) throws Exception {
        String run = System.currentTimeMillis() / 1000 + "-" + ProcessHandle.current().pid();
        // Amounts travel as strings or integers, never floating point: "100.50" is signed exactly as written.
        create("/v1/deposits", "{\"mrn\":\"D-java-" + run + "\",\"amount\":\"100.50\",\"channelId\":2,\"returnUrl\":\"https://shop.example/return\"}");
        create("/v1/payouts", "{\"mrn\":\"P-java-" + run + "\",\"amount\":500,\"bankName\":\"中国工商银行\",\"accountName\":\"张三\","
            + "\"accountNumber\":\"6222020200112233445\"}");
        for (String path : new String[] {"/v1/deposits/D-java-" + run, "/v1/payouts/P-java-" + run}) {
            HttpResponse<String> response = call("GET", path, null);
            System.out.println("GET " + path + " -> " + response.statusCode() + " " + response.body());
            if (response.statusCode() != 200) System.exit(1);
        }
    }
}
