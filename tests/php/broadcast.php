<?php
/*
 * Fire one broadcast through Laravel's real RedisBroadcaster (Laravel 8.83 from
 * Debian's php-laravel-framework), exactly as an app with BROADCAST_DRIVER=redis does.
 *
 * Usage: php tests/php/broadcast.php '<json>'
 *   {
 *     "port": 6380,                          Redis port (host is always 127.0.0.1)
 *     "prefix": "laravel_database_",         database.redis.options.prefix ("" allowed)
 *     "channels": [{"type": "public|private|presence|encrypted", "name": "orders"}],
 *     "event_class": "OrderShipped",         class name in namespace App\Events
 *     "broadcast_as": null | "message.sent", value returned by broadcastAs()
 *     "data": {"order": {"id": 1}},          the event's public properties
 *     "socket": null | "1234.5678"           X-Socket-ID of the current request => toOthers()
 *     "redis": {}                             merged into database.redis.default (TLS, ACL user, ...)
 *   }
 *
 * Exits 0 after the EVAL has been sent; non-zero (with a message on stderr) otherwise.
 */

declare(strict_types=1);

require_once __DIR__ . '/laravel_app.php';

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Http\Request;

function fail(string $msg): void
{
    fwrite(STDERR, "broadcast.php: $msg\n");
    exit(2);
}

if ($argc < 2) {
    fail('missing JSON argument');
}
$opts = json_decode($argv[1], true);
if (!is_array($opts)) {
    fail('argument is not a JSON object: ' . json_last_error_msg());
}

$port = (int) ($opts['port'] ?? 0);
if ($port <= 0) {
    fail('port is required');
}
$prefix = (string) ($opts['prefix'] ?? 'laravel_database_');
$channelSpecs = $opts['channels'] ?? [];
if (!is_array($channelSpecs) || count($channelSpecs) === 0) {
    fail('channels must be a non-empty list');
}
$eventClass = (string) ($opts['event_class'] ?? 'OrderShipped');
if (!preg_match('/^[A-Za-z_][A-Za-z0-9_]*$/', $eventClass)) {
    fail("bad event_class: $eventClass");
}
$broadcastAs = $opts['broadcast_as'] ?? null;
$data = $opts['data'] ?? [];
if (!is_array($data)) {
    fail('data must be an object');
}
$socket = $opts['socket'] ?? null;

// ---------------------------------------------------------------------------
// A minimal application container, wired the way Laravel's service providers do it.
// ---------------------------------------------------------------------------
$redis = $opts['redis'] ?? [];
if (!is_array($redis)) {
    fail('redis must be an object');
}
$app = laravel_app($prefix, $port, 5, $redis);

// The current HTTP request, carrying the sender's socket id (what Echo's axios interceptor sets).
if ($socket !== null) {
    $request = Request::create('/orders', 'POST', [], [], [], ['HTTP_X_SOCKET_ID' => (string) $socket]);
    $app->instance('request', $request);
}

// ---------------------------------------------------------------------------
// The event class, as an app would declare it in app/Events/<Name>.php.
// ---------------------------------------------------------------------------
$channelExprs = [];
foreach ($channelSpecs as $i => $spec) {
    $type = $spec['type'] ?? 'public';
    $name = (string) ($spec['name'] ?? '');
    $lit = var_export($name, true);
    switch ($type) {
        case 'public':
            $channelExprs[] = "new \\Illuminate\\Broadcasting\\Channel($lit)";
            break;
        case 'private':
            $channelExprs[] = "new \\Illuminate\\Broadcasting\\PrivateChannel($lit)";
            break;
        case 'presence':
            $channelExprs[] = "new \\Illuminate\\Broadcasting\\PresenceChannel($lit)";
            break;
        case 'encrypted':
            $channelExprs[] = "new \\Illuminate\\Broadcasting\\EncryptedPrivateChannel($lit)";
            break;
        default:
            fail("bad channel type at index $i: $type");
    }
}

$props = '';
foreach (array_keys($data) as $prop) {
    if (!is_string($prop) || !preg_match('/^[A-Za-z_][A-Za-z0-9_]*$/', $prop) || $prop === 'socket') {
        fail("bad data key: $prop");
    }
    $props .= "    public \$$prop;\n";
}

$asMethod = '';
if ($broadcastAs !== null) {
    $asMethod = "    public function broadcastAs() { return " . var_export((string) $broadcastAs, true) . "; }\n";
}

$code = "namespace App\\Events;\n"
    . "class $eventClass implements \\Illuminate\\Contracts\\Broadcasting\\ShouldBroadcastNow {\n"
    . "    use \\Illuminate\\Broadcasting\\InteractsWithSockets;\n"
    . $props
    . "    public function __construct(array \$data) { foreach (\$data as \$k => \$v) { \$this->\$k = \$v; } }\n"
    . "    public function broadcastOn() { return [" . implode(', ', $channelExprs) . "]; }\n"
    . $asMethod
    . "}\n";
eval($code);

$fqcn = "App\\Events\\$eventClass";
$event = new $fqcn($data);

try {
    if ($socket !== null) {
        // broadcast(...)->toOthers() calls $event->dontBroadcastToCurrentUser(), which reads
        // Broadcast::socket() = the X-Socket-ID header of the bound request. The pending
        // broadcast dispatches the event when it is destroyed at the end of this statement.
        broadcast($event)->toOthers();
    } else {
        event($event);
    }
} catch (\Throwable $e) {
    fail(get_class($e) . ': ' . $e->getMessage());
}

exit(0);
