<?php

// A PSR-4 autoloader for Lakebase\ classes, for use without Composer:
//   require '/path/to/bindings/php/autoload.php';
// (With Composer, vendor/autoload.php does the same from composer.json.)

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Lakebase\\', 9) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 9)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
