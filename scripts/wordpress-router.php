<?php
/**
 * WordPress's rewrite rules for PHP's built-in server (`php -S ADDR -t DOCROOT
 * router.php`), as its .htaccess gives them to Apache and try_files to nginx:
 * a file or folder that exists is served as it is; every other path is
 * WordPress's to answer through index.php (pretty permalinks, and paths such
 * as /.well-known/closte-operator/... that a plugin answers).
 *
 * @package Closte_Operator
 */

$closte_router_path = (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ); // phpcs:ignore
if ( file_exists( $_SERVER['DOCUMENT_ROOT'] . $closte_router_path ) ) {
	return false; // PHP's server serves it (a file, a folder's index.php)
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/index.php';
require $_SERVER['DOCUMENT_ROOT'] . '/index.php';
