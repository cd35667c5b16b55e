<?php
/*
 * A tiny Laravel-style app that answers /broadcasting/auth exactly as Laravel's own
 * RedisBroadcaster does under BROADCAST_DRIVER=redis (Laravel 8.83 from Debian's
 * php-laravel-framework). The decision and the body come from the real
 * RedisBroadcaster::auth() / validAuthenticationResponse(); nothing is re-implemented.
 *
 * Run as the router script of PHP's built-in server (cwd = repo root):
 *   AUTH_APP_LOG=/tmp/auth.log php -S 127.0.0.1:PORT tests/php/auth_app.php
 *
 * Routes
 *   GET|POST /broadcasting/auth       Broadcast::auth($request) (Laravel registers GET and POST)
 *   POST     /broadcasting/user-auth  the user array {"id":"1","name":"Ada"}, 403 when logged out
 *   GET      /__ready                 readiness probe (not logged)
 *
 * Users: 1 "Ada", 2 "Bob". Logged in via cookie `laravel_session=<id>` or
 * `Authorization: Bearer user-<id>`; anything else is a guest.
 *
 * Channels (as routes/channels.php would register them):
 *   orders.{id}  private   user id == {id}
 *   chat.{room}  presence  ['id' => id, 'name' => name] for any logged-in user
 *   secret.{id}  private   always false
 *   vault.{id}   private-encrypted-vault.{id}; user id == {id}
 *
 * Every request except /__ready is appended as one JSON line to $AUTH_APP_LOG (if set), before
 * the response is sent: {method, path, query, headers:{cookie, authorization, x-csrf-token,
 * x-socket-id, x-requested-with, content-type, accept}, body (raw), input (parsed), status,
 * response, user_id, exception}.
 */

declare(strict_types=1);

ini_set('display_errors', '0');
ini_set('log_errors', '1');
ini_set('error_log', 'php://stderr');

require_once __DIR__ . '/laravel_app.php';

use Illuminate\Auth\GenericUser;
use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Broadcasting\Broadcasters\RedisBroadcaster;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Routing\Router;
use Symfony\Component\HttpFoundation\Response as SymfonyResponse;
use Symfony\Component\HttpKernel\Exception\HttpExceptionInterface;

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';

if ($path === '/__ready') {
    header('Content-Type: text/plain');
    echo 'ok';
    return true;
}

// Laravel's HandleExceptions turns every PHP warning/notice into an ErrorException (=> 500).
set_error_handler(function (int $level, string $message, string $file = '', int $line = 0) {
    if (error_reporting() & $level) {
        throw new \ErrorException($message, 0, $level, $file, $line);
    }
    return false;
});

// ---------------------------------------------------------------------------
// Container + config, wired the way the framework's service providers do it.
// ---------------------------------------------------------------------------
// Never contacted: auth() does not touch Redis.
$app = laravel_app('laravel_database_', 6379, 1);

/** @var RedisBroadcaster $broadcaster */
$broadcaster = $app->make(BroadcastManager::class)->connection();
if (!$broadcaster instanceof RedisBroadcaster) {
    throw new \LogicException('expected RedisBroadcaster, got ' . get_class($broadcaster));
}

// routes/channels.php
$broadcaster->channel('orders.{id}', function ($user, $id) {
    return (int) $user->id === (int) $id;
});
$broadcaster->channel('chat.{room}', function ($user, $room) {
    return ['id' => $user->id, 'name' => $user->name];
});
$broadcaster->channel('secret.{id}', function ($user, $id) {
    return false;
});
$broadcaster->channel('vault.{id}', function ($user, $id) {
    return (int) $user->id === (int) $id;
});

// What Broadcast::resolveAuthenticatedUserUsing(...) would register (Laravel >= 9; 8.83 has no
// user-auth route, so the controller logic is reproduced below).
$resolveAuthenticatedUser = function (Request $request) {
    $user = $request->user();
    return $user ? ['id' => (string) $user->id, 'name' => $user->name] : null;
};

// ---------------------------------------------------------------------------
// The request and its "session".
// ---------------------------------------------------------------------------
$request = Request::capture();
$app->instance('request', $request);

const USERS = [1 => 'Ada', 2 => 'Bob'];

function findUser(?string $id): ?GenericUser
{
    if ($id === null || !preg_match('/^[0-9]+$/', $id)) {
        return null;
    }
    $id = (int) $id;
    return isset(USERS[$id]) ? new GenericUser(['id' => $id, 'name' => USERS[$id]]) : null;
}

$user = findUser($request->cookies->get('laravel_session'));
if ($user === null) {
    $authz = (string) $request->headers->get('Authorization', '');
    if (preg_match('/^Bearer\s+user-([0-9]+)$/', $authz, $m)) {
        $user = findUser($m[1]);
    }
}
$request->setUserResolver(fn ($guard = null) => $user);

// ---------------------------------------------------------------------------
// Dispatch. Exceptions are rendered the way Laravel's handler does (debug off).
// ---------------------------------------------------------------------------
$exception = null;
try {
    $method = $request->getMethod();
    if ($path === '/broadcasting/auth') {
        if (!in_array($method, ['GET', 'POST', 'HEAD'], true)) {
            throw new \Symfony\Component\HttpKernel\Exception\MethodNotAllowedHttpException(['GET', 'HEAD', 'POST']);
        }
        // BroadcastController::authenticate => Broadcast::auth($request)
        $result = $broadcaster->auth($request);
        $response = Router::toResponse($request, $result);
    } elseif ($path === '/broadcasting/user-auth') {
        if ($method !== 'POST') {
            throw new \Symfony\Component\HttpKernel\Exception\MethodNotAllowedHttpException(['POST']);
        }
        // BroadcastController::authenticateUser (Laravel >= 9)
        $result = $resolveAuthenticatedUser($request);
        if ($result === null) {
            throw new \Symfony\Component\HttpKernel\Exception\AccessDeniedHttpException();
        }
        $response = Router::toResponse($request, $result);
    } else {
        throw new \Symfony\Component\HttpKernel\Exception\NotFoundHttpException();
    }
} catch (\Throwable $e) {
    $exception = $e;
    $status = $e instanceof HttpExceptionInterface ? $e->getStatusCode() : 500;
    $message = $e instanceof HttpExceptionInterface ? $e->getMessage() : 'Server Error';
    if ($request->expectsJson()) {
        $response = new JsonResponse(['message' => $message], $status);
    } else {
        $text = SymfonyResponse::$statusTexts[$status] ?? 'Error';
        $response = new \Illuminate\Http\Response("$status | $text", $status);
    }
    $response->prepare($request);
    if (!$e instanceof HttpExceptionInterface) {
        error_log('auth_app.php: ' . get_class($e) . ': ' . $e->getMessage());
    }
}

// ---------------------------------------------------------------------------
// Log (before the response goes out, so a test that got its answer sees the line).
// ---------------------------------------------------------------------------
$logPath = getenv('AUTH_APP_LOG');
if (is_string($logPath) && $logPath !== '') {
    $h = $request->headers;
    $line = [
        'method' => $request->getMethod(),
        'path' => $path,
        'query' => (object) $request->query->all(),
        'headers' => [
            'cookie' => $h->get('Cookie'),
            'authorization' => $h->get('Authorization'),
            'x-csrf-token' => $h->get('X-CSRF-TOKEN'),
            'x-socket-id' => $h->get('X-Socket-ID'),
            'x-requested-with' => $h->get('X-Requested-With'),
            'content-type' => $h->get('Content-Type'),
            'accept' => $h->get('Accept'),
        ],
        'body' => $request->getContent(),
        'input' => (object) $request->all(),
        'user_id' => $user ? $user->id : null,
        'status' => $response->getStatusCode(),
        'response' => $response->getContent(),
        'exception' => $exception ? get_class($exception) : null,
    ];
    file_put_contents(
        $logPath,
        json_encode($line, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR) . "\n",
        FILE_APPEND | LOCK_EX
    );
}

$response->send();
return true;
