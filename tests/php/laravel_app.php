<?php
// A minimal Laravel application container for the test fixtures, wired the way the framework's service
// providers do it (config, Redis, events, bus, broadcasting), so Laravel's own broadcasting code runs
// unchanged. Shared by broadcast.php (RedisBroadcaster::broadcast) and auth_app.php (RedisBroadcaster::auth).

require_once '/usr/share/php/Illuminate/autoload.php';
require_once '/usr/share/php/Illuminate/Foundation/helpers.php';

use Illuminate\Broadcasting\BroadcastManager;
use Illuminate\Bus\Dispatcher as BusDispatcher;
use Illuminate\Config\Repository as Config;
use Illuminate\Container\Container;
use Illuminate\Events\Dispatcher as EventDispatcher;
use Illuminate\Redis\RedisManager;
use Illuminate\Support\Arr;
use Illuminate\Support\Facades\Facade;

/**
 * $redis is merged into database.redis.default, as an app's config/database.php would set it: e.g. TLS and an
 * ACL user: ['scheme' => 'tls', 'password' => ['user', 'pass'], 'context' => ['stream' => ['cafile' => ...]]].
 */
function laravel_app(string $prefix, int $port, int $timeout, array $redis = []): Container
{
    $app = new Container();
    Container::setInstance($app);
    Facade::setFacadeApplication($app);

    $app->instance('config', new Config([
        'broadcasting' => [
            'default' => 'redis',
            'connections' => [
                'redis' => ['driver' => 'redis', 'connection' => 'default'],
            ],
        ],
        'database' => [
            'redis' => [
                'client' => 'phpredis',
                'options' => ['prefix' => $prefix],
                'default' => array_merge([
                    'host' => '127.0.0.1',
                    'password' => null,
                    'port' => $port,
                    'database' => 0,
                    'read_timeout' => $timeout,
                    'timeout' => $timeout,
                ], $redis),
            ],
        ],
    ]));

    // RedisServiceProvider
    $app->singleton('redis', function ($app) {
        $config = $app->make('config')->get('database.redis', []);
        return new RedisManager($app, Arr::pull($config, 'client', 'phpredis'), $config);
    });
    $app->bind('redis.connection', fn ($app) => $app['redis']->connection());

    // EventServiceProvider
    $app->singleton('events', fn ($app) => new EventDispatcher($app));
    $app->alias('events', \Illuminate\Contracts\Events\Dispatcher::class);

    // BusServiceProvider
    $app->singleton(BusDispatcher::class, fn ($app) => new BusDispatcher($app));
    $app->alias(BusDispatcher::class, \Illuminate\Contracts\Bus\Dispatcher::class);

    // BroadcastServiceProvider
    $app->singleton(BroadcastManager::class, fn ($app) => new BroadcastManager($app));
    $app->alias(BroadcastManager::class, \Illuminate\Contracts\Broadcasting\Factory::class);
    $app->singleton(
        \Illuminate\Contracts\Broadcasting\Broadcaster::class,
        fn ($app) => $app->make(BroadcastManager::class)->connection()
    );

    return $app;
}
