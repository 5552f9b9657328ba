<?php
/**
 * Domains, settings and the Site Health verdict.
 *
 * @package Closte_Operator
 */

use PHPUnit\Framework\TestCase;

final class DomainsTest extends TestCase {

	public function test_normalize(): void {
		$this->assertSame( 'shop.example.com', Closte_Operator_Domains::normalize( ' Shop.Example.COM. ' ) );
		$this->assertSame( '127.0.0.1', Closte_Operator_Domains::normalize( '127.0.0.1:8080' ) );
		$this->assertSame( '*.example.com', Closte_Operator_Domains::normalize( '*.Example.com' ) );
	}

	public function test_only_domains_outside_the_network_need_an_alias(): void {
		$cases = array(
			array( 'shop.example.com', 'network.test', true ),
			array( 'network.test', 'network.test', false ),
			array( 'blog1.network.test', 'network.test', false ),
			array( 'BLOG1.Network.Test', 'network.test:8080', false ),
			array( 'evilnetwork.test', 'network.test', true ),
			array( 'shop.example.com', '127.0.0.1:8123', true ),
			array( '127.0.0.1:8123', '127.0.0.1:8123', false ),
			array( '10.0.0.5', 'network.test', false ),
			array( '', 'network.test', false ),
		);
		foreach ( $cases as list( $domain, $base, $custom ) ) {
			$this->assertSame( $custom, Closte_Operator_Domains::is_custom( $domain, $base ), "$domain under $base" );
		}
	}

	public function test_set_and_segment(): void {
		$this->assertSame( array( 'a.example.com', 'b.example.com' ), Closte_Operator_Domains::set( array( 'b.example.com', 'A.example.com.', '', 'a.example.com' ) ) );
		$this->assertSame( '%2A.example.com', Closte_Operator_Domains::segment( '*.example.com' ) );
	}

	public function test_token_file(): void {
		$dir  = sys_get_temp_dir() . '/closte-operator-unit-' . getmypid();
		$file = $dir . '/token';
		@mkdir( $dir );
		file_put_contents( $file, "  s3cret\n" );
		$this->assertSame( array( 's3cret', '' ), Closte_Operator_Config::read_token_file( $file ) );
		file_put_contents( $file, "\n" );
		$this->assertSame( array( '', "the token file $file is empty" ), Closte_Operator_Config::read_token_file( $file ) );
		unlink( $file );
		rmdir( $dir );
		// no PHP warning for a missing file (the test fails on warnings)
		$this->assertSame( array( '', "cannot read the token file $file" ), Closte_Operator_Config::read_token_file( $file ) );
	}

	public function test_health_verdicts(): void {
		$config   = new Closte_Operator_Config( 'http://127.0.0.1:8087', 't', 2.0, '', 'placeholder' );
		$up       = new Closte_Operator_Result( 200, 'ok' );
		$list     = fn( array $domains ) => new Closte_Operator_Result( 200, json_encode( array( 'domains' => $domains ) ) );
		$ready    = array(
			'domain' => 'a.example.com',
			'ready'  => true,
			'stage'  => 'done',
		);
		$waiting  = array(
			'domain'  => 'b.example.com',
			'ready'   => false,
			'stage'   => 'checking-dns',
			'reason'  => 'DNSNotReady',
			'message' => 'NXDOMAIN',
		);
		$evaluate = fn( $health, $domains, $queued = 0 ) => Closte_Operator_Health::evaluate( $config, $health, $domains, $queued );

		$this->assertSame( 'good', $evaluate( $up, $list( array( $ready ) ) )['status'] );

		$verdict = $evaluate( Closte_Operator_Result::unreachable( 'cURL error 7' ), null );
		$this->assertSame( 'critical', $verdict['status'] );
		$this->assertStringContainsString( 'cURL error 7', $verdict['problems'][0] );

		$verdict = $evaluate( $up, new Closte_Operator_Result( 401, '{"error":"wrong token"}' ) );
		$this->assertSame( 'critical', $verdict['status'] );
		$this->assertStringContainsString( 'refuses the token', $verdict['summary'] );

		$verdict = $evaluate( $up, $list( array( $ready, $waiting ) ) );
		$this->assertSame( 'recommended', $verdict['status'] );
		$this->assertSame( array( $waiting ), $verdict['not_ready'] );

		$verdict = $evaluate( $up, $list( array() ), 3 );
		$this->assertSame( 'recommended', $verdict['status'] );
		$this->assertStringContainsString( '3 domain changes are queued', $verdict['problems'][0] );

		$verdict = Closte_Operator_Health::evaluate( new Closte_Operator_Config( 'http://localhost', '', 2.0, 'no token defined', 'placeholder' ), $up, $list( array() ), 0 );
		$this->assertStringContainsString( 'no token defined', $verdict['problems'][0] );

		$verdict = Closte_Operator_Health::evaluate( new Closte_Operator_Config( 'http://127.0.0.1:8087', 't' ), $up, $list( array() ), 0 );
		$this->assertSame( 'good', $verdict['status'] );
		$this->assertStringContainsString( 'CLOSTE_CLIENT_API_KEY is not defined', $verdict['problems'][0] );

		$verdict = Closte_Operator_Health::evaluate( new Closte_Operator_Config( 'http://sidecar.example:8087', 't', 2.0, '', 'placeholder' ), Closte_Operator_Result::unreachable( 'not sent' ), null, 0 );
		$this->assertSame( 'critical', $verdict['status'] );
		$this->assertSame( 'The closte-operator sidecar URL would expose the token', $verdict['summary'] );
		$this->assertStringContainsString( 'CLOSTE_OPERATOR_SIDECAR_URL (http://sidecar.example:8087) is neither a loopback address nor https', $verdict['problems'][0] );
	}

	public function test_the_sidecar_url_is_loopback_or_https(): void {
		foreach ( array( 'http://127.0.0.1:8087', 'http://127.3.2.1', 'http://localhost:8087', 'http://LOCALHOST', 'http://[::1]:8087', 'https://sidecar.example', 'HTTPS://10.0.0.5:8443' ) as $url ) {
			$this->assertSame( '', Closte_Operator_Config::url_problem( $url ), $url );
		}
		foreach ( array( 'http://10.0.0.5:8087', 'http://sidecar.example', 'http://127.0.0.1.nip.io', 'http://localhost.example', 'http://[::2]', 'http://0.0.0.0:8087', 'ftp://127.0.0.1', 'http://user:pw@127.0.0.1', '127.0.0.1:8087', 'not a url', '' ) as $url ) {
			$this->assertNotSame( '', Closte_Operator_Config::url_problem( $url ), $url );
			$this->assertNotSame( '', ( new Closte_Operator_Config( $url, 't' ) )->url_error, $url );
		}
	}

	public function test_desired_keeps_existing_sites_custom_domains_and_one_site_per_domain(): void {
		$primary = array(
			1 => 'network.example',
			2 => 'shop.example.com',
			3 => 'blog.network.example',
			5 => 'five.example.com',
		);
		$listed  = array(
			2 => array( 'Extra.Example.com.', 'five.example.com' ),
			3 => array( 'mapped.example.com', 'shop.example.com', 42 ),
			9 => array( 'gone-site.example.com' ),
		);
		$this->assertSame(
			array(
				1 => array(),
				2 => array( 'extra.example.com', 'shop.example.com' ),
				3 => array( 'mapped.example.com' ),
				5 => array( 'five.example.com' ),
			),
			Closte_Operator_Domains::desired( $listed, $primary, 'network.example' ),
			'a site\'s own domain is claimed before any mapping; sites that do not exist and junk are dropped'
		);
		$this->assertSame(
			array(
				'extra.example.com'  => 2,
				'shop.example.com'   => 2,
				'mapped.example.com' => 3,
			),
			Closte_Operator_Domains::claims( array( 2 => array( 'extra.example.com', 'shop.example.com' ), 3 => array( 'mapped.example.com' ) ) )
		);
	}

	public function test_interval_settings_are_whole_seconds_within_range(): void {
		$this->assertSame( array( 'seconds' => 60, 'source' => 'setting', 'error' => '' ), Closte_Operator_Domains::interval( '60', 'setting' ) );
		$low = Closte_Operator_Domains::interval( 3, 'ultimate-multisite' );
		$this->assertSame( 10, $low['seconds'] );
		$this->assertStringContainsString( 'outside 10..300', $low['error'] );
		$this->assertSame( 300, Closte_Operator_Domains::interval( 900, 'setting' )['seconds'] );
		$junk = Closte_Operator_Domains::interval( 'soon', 'setting' );
		$this->assertSame( 300, $junk['seconds'] );
		$this->assertStringContainsString( 'not a number', $junk['error'] );
	}

	public function test_seconds_of_a_kubernetes_duration(): void {
		$this->assertSame( 300, Closte_Operator_Domains::seconds( '300s' ) );
		$this->assertSame( 300, Closte_Operator_Domains::seconds( '5m' ) );
		$this->assertSame( 90, Closte_Operator_Domains::seconds( '1m30s' ) );
		$this->assertSame( 3600, Closte_Operator_Domains::seconds( '1h' ) );
		$this->assertNull( Closte_Operator_Domains::seconds( '' ) );
		$this->assertNull( Closte_Operator_Domains::seconds( '5 minutes' ) );
	}

	public function test_the_php_check(): void {
		$this->assertTrue( closte_operator_php_supported( 80100 ) );
		$this->assertTrue( closte_operator_php_supported( 80312 ) );
		$this->assertFalse( closte_operator_php_supported( 80030 ) );
		$this->assertFalse( closte_operator_php_supported( 70433 ) );
	}
}

