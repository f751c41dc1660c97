<?php
// A client of pay-sidecar's internal API with PHP 8 and no extensions beyond json: a deposit, a payout, two queries.
// SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
declare(strict_types=1);

$api = rtrim(getenv('SIDECAR_URL') ?: 'http://127.0.0.1:8080', '/');
$token = getenv('PAYSIDECAR_API_TOKEN') ?: null;

/** @return array{0:int,1:array} the status and the decoded JSON (errors are problem+json with a stable "code") */
function call(string $method, string $path, ?array $body = null): array
{
    global $api, $token;
    $headers = ['Accept: application/json'];
    if ($token !== null) $headers[] = "Authorization: Bearer $token";
    $options = ['method' => $method, 'ignore_errors' => true, 'timeout' => 30];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        $options['content'] = json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    }
    $options['header'] = implode("\r\n", $headers);
    $text = file_get_contents($api . $path, false, stream_context_create(['http' => $options]));
    if ($text === false) throw new RuntimeException("cannot reach $api");
    preg_match('#^HTTP/\S+ (\d{3})#', $http_response_header[0], $m);
    return [(int)$m[1], json_decode($text, true) ?? []];
}

/** An unknown outcome is retried with the SAME body: the sidecar journals every mrn, so it never pays twice. */
function create(string $path, array $body): array
{
    for ($attempt = 0; $attempt < 3; $attempt++) {
        [$status, $answer] = call('POST', $path, $body);
        if ($status < 500 || ($answer['orderStatus'] ?? null) !== 'unknown') break;
        sleep(2 ** $attempt);
    }
    echo "POST $path -> $status ", json_encode($answer, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
    if ($status >= 300) throw new RuntimeException(($answer['code'] ?? '?') . ': ' . ($answer['detail'] ?? ''));
    return $answer;
}

$run = time() . '-' . getmypid();
// Amounts travel as strings or integers, never floats: "100.50" is signed exactly as written.
create('/v1/deposits', ['mrn' => "D-php-$run", 'amount' => '100.50', 'channelId' => 2, 'returnUrl' => 'https://shop.example/return']);
create('/v1/payouts', ['mrn' => "P-php-$run", 'amount' => 500, 'bankName' => '中国工商银行', 'accountName' => '张三',
    'accountNumber' => '6222020200112233445']);
foreach (["/v1/deposits/D-php-$run", "/v1/payouts/P-php-$run"] as $path) {
    [$status, $answer] = call('GET', $path);
    echo "GET $path -> $status ", json_encode($answer, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
    if ($status !== 200) exit(1);
}
